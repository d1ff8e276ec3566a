import json
from pathlib import Path

from conftest import CMU_SVS, needs_cmu_svs
from napari_shisrcnet.cli import main


def test_demo_writes_results_figures_and_summary(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--out", str(out), "--model", str(tiny_checkpoint), "--device", "cpu"]) == 0
    )
    printed = capsys.readouterr().out
    assert "demo finished" in printed and "overlay_png" in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "sr_ome_zarr",
        "classification_ome_zarr",
        "comparison_png",
        "overlay_png",
        "tiles_csv",
        "geojson",
    ):
        assert Path(summary[key]).exists(), key
    assert sum(v for k, v in summary["tiles_per_class"].items() if k != "background") > 0
    from napari_shisrcnet.io.slides import open_slide

    with open_slide(summary["sr_ome_zarr"]) as sr:
        assert sr.levels[0].shape == (512, 512, 3)  # the 256 px region at x2


def test_demo_without_bundled_weights_falls_back_to_bicubic(tmp_path, capsys, monkeypatch):
    from napari_shisrcnet.model import bundled

    monkeypatch.setattr(bundled, "BUNDLED_WEIGHTS", {"default": "absent.safetensors"})
    assert main(["demo", "--out", str(tmp_path), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "falls back to bicubic" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "bicubic" and "overlay_png" not in summary


@needs_cmu_svs
def test_the_demo_super_resolves_the_region_its_figure_shows(tmp_path, tiny_checkpoint_1um):
    """A model that reads slides at 1.0 µm/px: the demo took its region from the stored
    level (0.499 µm/px) and handed it to a job that reads the resampled level, so the SR
    came from another place (blank glass at the scan's edge, clipped to 252 px) than the
    LR and bicubic beside it."""
    import numpy as np
    import tifffile
    from skimage.transform import resize

    from napari_shisrcnet.demo import run_demo

    # near bicubic: the tiny model's residual starts small
    summary = run_demo(tmp_path / "demo", model=str(tiny_checkpoint_1um), device="cpu")
    assert summary["sr_region_mpp"] == 1.0 and summary["sr_region_level"] == 0
    x, y, width, height = summary["sr_region_xywh"]
    assert width == height == 256
    from napari_shisrcnet.io.slides import open_slide

    with open_slide(summary["sr_ome_zarr"]) as result:
        sr = np.asarray(result.levels[0])
    assert sr.shape == (512, 512, 3)
    # The same tissue, found independently: the region in level-0 pixels of the scan.
    stored_per_read = 1.0 / 0.499
    level0 = tifffile.imread(CMU_SVS, key=0)
    rows = slice(round(y * stored_per_read), round((y + height) * stored_per_read))
    columns = slice(round(x * stored_per_read), round((x + width) * stored_per_read))
    expected = resize(level0[rows, columns], sr.shape[:2], anti_aliasing=True) * 255
    assert np.abs(sr - expected).mean() < 12  # another place differs by ~60 or more
