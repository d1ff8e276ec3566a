"""The one copy of pixel-centre placement and block averaging."""

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_shisrcnet.geometry import PixelGrid, Region, block_mean, halve, physical_grid


def test_a_coarser_pixel_centre_lies_half_its_span_in():
    level0 = PixelGrid((0.5, 0.5), (10.0, 20.0), ("micrometer", "micrometer"))
    level1 = level0.coarser(2)  # a pyramid level: pixel 0 covers level-0 pixels 0 and 1
    assert level1.scale == (1.0, 1.0) and level1.translate == (10.25, 20.25)
    sr = level1.coarser(0.5, (3, 4))  # x2 SR of the region starting at level-1 pixel (3, 4)
    # Its first pixel is level-0 pixel (6, 8) exactly.
    assert sr.scale == (0.5, 0.5) and sr.translate == (10.0 + 6 * 0.5, 20.0 + 8 * 0.5)
    tiles = level0.coarser(64, (128, 0))  # 64 px tiles from level-0 pixel (128, 0)
    assert tiles.translate == (10.0 + (128 + 31.5) * 0.5, 20.0 + 31.5 * 0.5)
    assert tiles.units == ("micrometer", "micrometer")


def test_physical_grid_is_micrometres_only_when_known():
    assert physical_grid(0.25).layer_keywords() == {
        "scale": (0.25, 0.25),
        "translate": (0.0, 0.0),
        "units": ("micrometer", "micrometer"),
    }
    assert "units" not in physical_grid(None).layer_keywords()


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    factor=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_block_mean_is_the_rounded_mean_of_edge_padded_blocks(height, width, factor, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    padded = np.pad(pixels, ((0, -height % factor), (0, -width % factor), (0, 0)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor, 3)
    expected = np.floor(blocks.astype(np.float64).mean(axis=(1, 3)) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(block_mean(pixels, factor), expected)
    lazy = block_mean(da.from_array(pixels, chunks=(7, 9, 3)), factor)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_halve_is_block_mean_by_two_on_planar_pixels():
    pixels = np.random.default_rng(1).integers(0, 256, (3, 37, 51), dtype=np.uint8)
    np.testing.assert_array_equal(halve(pixels), block_mean(pixels, 2, (1, 2)))


def test_region_clipping():
    assert Region(-5, 10, 20, 100).clipped_to((12, 50)) == Region(0, 10, 12, 40)
    with pytest.raises(ValueError, match="lies outside the 50x12 px image"):
        Region(20, 0, 5, 5).clipped_to((12, 50))
