"""Real-pyramid evaluation: alignment of level L+1 with level L, the command end to end."""

import json

import numpy as np
import pytest
import tifffile
from skimage.data import immunohistochemistry

from napari_shisrcnet.cli import main
from napari_shisrcnet.geometry import block_mean
from napari_shisrcnet.io.scanner_pyramid import write_scanner_pyramid
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.samples import CMU_SMALL_REGION
from napari_shisrcnet.train.metrics import image_quality
from napari_shisrcnet.train.pyramid_command import detailed_window
from napari_shisrcnet.train.pyramid_evaluation import read_regions, super_resolve_region

IHC = immunohistochemistry()  # real stained tissue, 512 x 512


@pytest.fixture(scope="module")
def cmu_scanner_pyramid(tmp_path_factory):
    """The bundled scan with a level 1 made like its own tiles (box average, JPEG Q 30)."""
    level0 = tifffile.imread(CMU_SMALL_REGION, key=0)
    path = tmp_path_factory.mktemp("pyramid") / "cmu-scanner.tif"
    return write_scanner_pyramid(level0, path, mpp=0.499)


@pytest.mark.parametrize(("factor", "scale", "block"), [(2, 2, 1), (4, 2, 2), (4, 4, 1)])
def test_lr_pixels_are_the_box_average_of_their_reference_pixels(tmp_path, factor, scale, block):
    path = write_scanner_pyramid(IHC, tmp_path / "p.tif", factor=factor, quality=None)
    levels = open_slide(path).levels
    origins = [(0, 0), (32, 64), (64, 32)]
    regions = read_regions(levels, 0, scale, origins, 32, block)
    assert len(regions) == 3
    for region in regions:
        assert region.reference.shape == (32 * scale, 32 * scale, 3)
        rebuilt = block_mean(region.reference, scale).astype(int)
        # Exact for one averaging; two roundings (block, then scale) differ by at most 1.
        assert np.abs(rebuilt - region.lr.astype(int)).max() <= (0 if block == 1 else 1)


def test_upsampled_lr_lines_up_with_the_reference_at_zero_shift(tmp_path):
    path = write_scanner_pyramid(IHC, tmp_path / "p.tif", quality=None)
    [region] = read_regions(open_slide(path).levels, 0, 2, [(64, 64)], 128, 1)
    _, bicubic = super_resolve_region(None, region.lr, 2)
    reference = region.reference / 255

    def psnr(dy, dx):
        shifted = np.roll(reference, (dy, dx), axis=(0, 1))
        return image_quality(bicubic, shifted, 8)["psnr"]

    aligned = psnr(0, 0)
    assert all(aligned > psnr(dy, dx) + 0.5 for dy, dx in [(1, 0), (-1, 0), (0, 1), (0, -1)])


def test_the_command_prints_a_table_and_writes_json_and_a_figure(
    cmu_scanner_pyramid, tiny_checkpoint, tmp_path, capsys
):
    report_file = tmp_path / "report.json"
    args = ["evaluate-pyramid", str(cmu_scanner_pyramid), "--checkpoint", str(tiny_checkpoint)]
    args += ["--regions", "3", "--region-px", "64", "--json", str(report_file)]
    assert main(args) == 0
    report = json.loads(report_file.read_text())
    assert report["level_ratio"] == pytest.approx(2.0, abs=0.01)
    assert report["reference_block_mean"] == 1 and len(report["regions"]) == 3
    summary = report["summary"]
    low, high = summary["psnr_gain_ci95"]
    assert low <= summary["psnr_gain"] <= high
    assert {"psnr_y", "ssim_y", "psnr_y_bicubic", "ssim_bicubic"} <= summary.keys()
    assert (tmp_path / "cmu-scanner-pyramid-sr.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "x2 SR of level 1 vs level 0" in out and "PSNR gain over bicubic" in out


def test_bicubic_is_its_own_baseline(cmu_scanner_pyramid, tmp_path):
    report_file = tmp_path / "r.json"
    args = ["evaluate-pyramid", str(cmu_scanner_pyramid), "--checkpoint", "bicubic"]
    args += ["--regions", "2", "--region-px", "64", "--json", str(report_file)]
    assert main(args) == 0
    assert json.loads(report_file.read_text())["summary"]["psnr_gain"] == 0.0


def test_levels_that_do_not_fit_the_scale_and_single_level_slides_are_refused(
    tmp_path, tiny_checkpoint, capsys
):
    three = write_scanner_pyramid(IHC, tmp_path / "three.tif", factor=3)
    args = ["evaluate-pyramid", str(three), "--checkpoint", str(tiny_checkpoint)]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert "level 1 is 2.994x coarser than level 0; an x2 model" in capsys.readouterr().err
    assert main(["evaluate-pyramid", str(CMU_SMALL_REGION), "--checkpoint", "bicubic"]) == 2
    assert "has 1 pyramid level(s)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bicubic_takes_the_scale_asked_for(tmp_path):
    pyramid = write_scanner_pyramid(IHC, tmp_path / "four.tif", factor=4)
    report_file = tmp_path / "r.json"
    args = ["evaluate-pyramid", str(pyramid), "--checkpoint", "bicubic", "--scale", "4"]
    assert main([*args, "--regions", "2", "--region-px", "32", "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["scale"] == 4 and report["reference_block_mean"] == 1


def test_the_figure_shows_the_detailed_part_of_a_region_not_its_blank_centre():
    """A region whose centre is blank glass and whose detail is in one corner is shown by
    that corner (the centre crop showed plain white in the CMU figure)."""
    reference = np.full((256, 256, 3), 0.95)
    reference[128:, 128:] = IHC[:128, :128] / 255  # tissue in the lower right quarter
    window = detailed_window(reference, 128)
    assert window == np.s_[128:256, 128:256]
