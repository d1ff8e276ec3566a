"""Reading slides at a physical pixel size: resampling without seams, the model's µm/px."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CMU_SVS
from napari_shisrcnet import api
from napari_shisrcnet.geometry import block_mean
from napari_shisrcnet.io.resampled import ResampledLevel
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.io.synthetic import write_synthetic_slide
from napari_shisrcnet.settings import SlideJobSettings, read_plan


def _image(seed=0, shape=(61, 83, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_downsampling_by_two_is_the_block_mean():
    image = _image()
    np.testing.assert_array_equal(
        ResampledLevel(image[:60, :82], 2.0)[:, :], block_mean(image[:60, :82], 2)
    )


@settings(max_examples=25, deadline=None)
@given(factor=st.sampled_from([0.5, 0.8, 1.3, 2.0, 2.37, 4.0]), cut=st.integers(1, 20))
def test_windows_read_apart_fit_together_without_seams(factor, cut):
    level = ResampledLevel(_image(), factor)
    whole = level[:, :]
    height, width, _ = level.shape
    cut_y, cut_x = min(cut, height - 1), min(cut, width - 1)
    np.testing.assert_array_equal(level[:cut_y, :cut_x], whole[:cut_y, :cut_x])
    np.testing.assert_array_equal(level[cut_y:, cut_x:], whole[cut_y:, cut_x:])
    np.testing.assert_array_equal(level[2 : cut_y + 3, 1:], whole[2 : cut_y + 3, 1:])


def test_a_flat_image_stays_flat_at_any_factor():
    flat = np.full((50, 70, 3), 137, np.uint8)
    for factor in (0.37, 1.0001, 1.7, 3.2):
        assert (ResampledLevel(flat, factor)[:, :] == 137).all()


def test_the_real_svs_is_read_at_the_asked_pixel_size():
    model = api.load_model("bicubic", "cpu")
    with open_slide(CMU_SVS) as slide:  # 2220 x 2967 px at 0.499 µm/px, one level
        level, factor, mpp = read_plan(SlideJobSettings(target_mpp=1.0), slide.metadata, model)
        assert (level, mpp) == (0, 1.0) and factor == pytest.approx(1.0 / 0.499)
        sr = api.super_resolve(slide, model, target_mpp=1.0, region=api.Region(300, 400, 64, 64))
    assert sr.shape == (128, 128, 3)


def test_by_default_a_slide_is_read_at_the_models_pixel_size(
    tmp_path, pyramid_tiff, tiny_checkpoint_1um
):
    model = api.load_model(tiny_checkpoint_1um, "cpu")
    assert model.lr_mpp == pytest.approx(1.0)
    result = api.process_slide(pyramid_tiff, tmp_path, model, classification_tile_px=64)
    summary = result.summary  # 0.5 µm/px slide with a /2 level: read level 1 as stored
    assert summary["level"] == 1 and summary["read_factor"] == 1.0 and summary["mpp"] == 1.0
    native = api.process_slide(
        pyramid_tiff, tmp_path / "native", model, classification_tile_px=64, match_model_mpp=False
    )
    assert native.summary["level"] == 0 and native.summary["mpp"] == 0.5


def test_the_same_tissue_at_two_pixel_sizes_gives_the_same_class_map(tmp_path, tiny_checkpoint):
    coarse = write_synthetic_slide(tmp_path / "coarse.tif", (768, 1024), mpp=0.5, n_levels=1)
    fine = write_synthetic_slide(
        tmp_path / "fine.tif", (1536, 2048), mpp=0.25, n_levels=1, tissue_step=0.5
    )
    model = api.load_model(tiny_checkpoint, "cpu")
    options = dict(target_mpp=0.5, classification_tile_px=64, min_tissue_fraction=0.0)
    maps = [api.classify_tiles(path, model, **options) for path in (coarse, fine)]
    assert maps[0].grid.shape == maps[1].grid.shape == (12, 16)
    # The untrained classifier's classes hardly vary, so the tissue fractions (a function
    # of the pixels read) carry the comparison: they must vary and agree.
    fractions = [m.tissue_fraction for m in maps]
    assert np.ptp(fractions[0]) > 0.5
    assert np.abs(fractions[0] - fractions[1]).mean() < 0.05
    agree = (maps[0].label_map == maps[1].label_map).mean()
    native = api.classify_tiles(fine, model, classification_tile_px=64, min_tissue_fraction=0.0)
    assert native.grid.shape == (24, 32)  # read as stored: tiles of half the size
    assert agree >= 0.9, agree
    difference = np.abs(maps[0].probabilities - maps[1].probabilities).mean()
    assert difference < 0.05, difference


def test_a_slide_without_a_pixel_size_is_read_as_stored_with_a_warning(tiny_checkpoint_1um):
    from napari_shisrcnet.settings import PixelSizeWarning

    image = np.full((96, 128, 3), 200, np.uint8)
    model = api.load_model(tiny_checkpoint_1um, "cpu")
    with pytest.warns(PixelSizeWarning, match="pixel size is unknown.*1 µm/px the model"):
        sr = api.super_resolve(image, model)
    assert sr.shape == (192, 256, 3)  # as stored: nothing invented
    resampled = api.super_resolve(image, model, slide_mpp=0.5)  # supplied: read at 1 µm/px
    assert resampled.shape == (96, 128, 3)
