"""Clean outcomes for odd inputs and concurrent runs: one line, nothing left behind."""

import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_shisrcnet import api
from napari_shisrcnet.cli import main
from napari_shisrcnet.errors import OptionError
from napari_shisrcnet.geometry import Region
from napari_shisrcnet.io.slides import SlideError, open_slide
from napari_shisrcnet.results.lock import ResultLock
from napari_shisrcnet.results.paths import result_name
from napari_shisrcnet.settings import SlideJobSettings


def _predict(*arguments) -> list[str]:
    return ["predict", *map(str, arguments)]


def test_an_unknown_device_is_one_line_naming_the_option(tmp_path, pyramid_tiff, capsys):
    out = tmp_path / "out"
    code = main(_predict(pyramid_tiff, "--out", out, "--model", "bicubic", "--device", "bogus"))
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert error.endswith("device 'bogus' is not one of auto, cpu, cuda, cuda:N, mps (--device)")
    assert not out.exists()


def test_slide_paths_as_bytes_or_nonsense(pyramid_tiff):
    with open_slide(os.fsencode(pyramid_tiff)) as slide:
        assert slide.shape == (1200, 1600)
    with pytest.raises(SlideError, match="a slide is given by its path"):
        open_slide(42)


def test_an_unfinished_result_never_opens_as_an_image(tmp_path, pyramid_tiff):
    from napari_shisrcnet.napari.reader import read_slides

    result = api.process_slide(
        pyramid_tiff, tmp_path, "bicubic", classification=False, region=Region(0, 0, 64, 64)
    )
    group = zarr.open_group(result.zarr_path, mode="r+")
    group.attrs["napari_shisrcnet"] = {**group.attrs["napari_shisrcnet"], "complete": False}
    for opener in (open_slide, read_slides):
        with pytest.raises(SlideError, match="unfinished napari-shisrcnet result; rerun"):
            opener(result.zarr_path)


def test_results_are_named_without_the_slide_suffix():
    assert result_name("a.v2.svs") == "a.v2"
    assert result_name("slide.ome.tiff") == "slide" and result_name("S.OME.TIF") == "S"
    assert result_name("x.ome.zarr") == "x" and result_name("scan.png") == "scan"


def test_slides_whose_results_would_share_a_name_are_refused(tmp_path, pyramid_tiff, capsys):
    twins = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        twins.append(tmp_path / folder / "slide.tif")
        twins[-1].symlink_to(pyramid_tiff)
    out = tmp_path / "out"
    code = main(_predict(*twins, "--out", out, "--model", "bicubic", "--no-classify"))
    error = capsys.readouterr().err.strip()
    assert code == 2 and f"{twins[0]} and {twins[1]} would both be written to" in error
    assert error.endswith("(INPUT, --out)") and not out.exists()


def test_overwrite_removes_every_file_of_the_old_result(tmp_path, pyramid_tiff, tiny_checkpoint):
    options = dict(region=Region(0, 0, 256, 256), classification_tile_px=64)
    old = api.process_slide(pyramid_tiff, tmp_path, tiny_checkpoint, geojson=True, **options)
    assert old.csv_path.exists() and old.geojson_path.exists()
    new = api.process_slide(
        pyramid_tiff, tmp_path, tiny_checkpoint, classification=False, overwrite=True, **options
    )
    assert new.csv_path is None and new.geojson_path is None
    assert not old.csv_path.exists() and not old.geojson_path.exists()


def test_a_second_run_on_one_result_is_refused(tmp_path, pyramid_tiff):
    options = dict(classification=False, region=Region(0, 0, 64, 64))
    zarr_path = api.result_zarr_path(tmp_path, pyramid_tiff)
    with ResultLock(zarr_path), pytest.raises(OptionError, match="another run is writing"):
        api.process_slide(pyramid_tiff, tmp_path, "bicubic", **options)
    assert not zarr_path.exists()
    api.process_slide(pyramid_tiff, tmp_path, "bicubic", **options)  # free again
    assert not ResultLock(zarr_path).path.exists()  # removed when the run ended


def test_a_killed_runs_lock_is_never_stale(tmp_path):
    zarr_path = tmp_path / "slide.ome.zarr"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from napari_shisrcnet.results.lock import ResultLock; "
            f"ResultLock({str(zarr_path)!r}).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OptionError, match="another run is writing"):
        ResultLock(zarr_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with ResultLock(zarr_path):  # the OS released the dead process's lock
        pass


@pytest.mark.parametrize(
    ("image_shape", "words"),
    [((8, 8, 3), "tiles of 8 px are too small"), ((1, 4000, 3), "tiles of 1 px are too small")],
)
def test_too_small_for_the_classifier_is_refused_before_any_work(
    tmp_path, tiny_checkpoint, image_shape, words
):
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, np.full(image_shape, 128, np.uint8), photometric="rgb")
    with pytest.raises(OptionError, match=words) as error:
        api.process_slide(path, tmp_path / "out", tiny_checkpoint)
    assert set(error.value.options) == {"region", "classification_tile_px"}
    assert not (tmp_path / "out").exists()


def test_a_region_starting_outside_the_image_is_refused():
    with pytest.raises(OptionError, match=r"starts outside the image \(x -5, y 0\)"):
        SlideJobSettings(region=Region(0, -5, 10, 10))


def test_nan_pixels_in_float_images_read_as_black_without_warnings(tmp_path):
    pixels = np.full((32, 32, 3), 0.5, np.float32)
    pixels[:4, :4] = np.nan
    tifffile.imwrite(tmp_path / "float.tif", pixels, photometric="rgb")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_slide(tmp_path / "float.tif") as slide:
            read = slide.levels[0].compute()
    assert (read[:4, :4] == 0).all() and (read[8:, 8:] == 128).all()


@settings(max_examples=80, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 500), st.integers(1, 500)),
    y=st.integers(0, 600),
    x=st.integers(0, 600),
    height=st.integers(1, 600),
    width=st.integers(1, 600),
)
def test_clipping_keeps_exactly_the_part_inside(shape, y, x, height, width):
    region = Region(y, x, height, width)
    inside = y < shape[0] and x < shape[1]
    if not inside:
        with pytest.raises(ValueError, match="lies outside"):
            region.clipped_to(shape)
        return
    clipped = region.clipped_to(shape)
    assert (clipped.y, clipped.x) == (y, x)
    assert clipped.y + clipped.height == min(y + height, shape[0])
    assert clipped.x + clipped.width == min(x + width, shape[1])
    assert clipped.clipped_to(shape) == clipped
