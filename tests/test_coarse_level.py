"""Coarse images by streaming block means: tissue detection and the no-SR overview read a
single-level slide piece by piece, never the whole level, and give what the whole-level
computation gave."""

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_shisrcnet import api
from napari_shisrcnet.engine import coarse
from napari_shisrcnet.engine.tiling import TileGrid, read_window
from napari_shisrcnet.engine.tissue import _coarse_level, tissue_fractions, tissue_pixels
from napari_shisrcnet.geometry import Region, block_mean
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.io.synthetic import synthetic_he_tile, write_synthetic_slide


class RecordingLevel:
    """A (Y, X, 3) level that remembers the largest read (in pixels) made from it."""

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, level) -> None:
        self.level, self.shape, self.largest_read_px, self.reads = level, level.shape, 0, 0

    def __getitem__(self, key) -> np.ndarray:
        pixels = np.asarray(self.level[key])
        self.largest_read_px = max(self.largest_read_px, pixels.shape[0] * pixels.shape[1])
        self.reads += 1
        return pixels


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of at most 64 x 256 level px, so small test slides are read in many."""
    monkeypatch.setattr(coarse, "PIECE_ROWS_PX", 64)
    monkeypatch.setattr(coarse, "READ_BAND_PX", 256)
    return 64 * 256


def _old_tissue_fractions(levels, level, grid):
    """tissue_fractions as it was before coarse images: the stored coarse level, read whole."""
    coarse_level = _coarse_level(levels, level, grid.tile_px)
    factor = levels[level].shape[1] / levels[coarse_level].shape[1]
    region = grid.region
    window = (
        int(region.y / factor),
        max(int(np.ceil((region.y + region.height) / factor)), int(region.y / factor) + 1),
        int(region.x / factor),
        max(int(np.ceil((region.x + region.width) / factor)), int(region.x / factor) + 1),
    )
    mask = tissue_pixels(read_window(levels[coarse_level], window)).astype(np.float32)
    fractions = np.zeros(grid.shape, np.float32)
    for tile in grid.tiles():
        y0, y1, x0, x1 = (round(v / factor) for v in tile.core)
        y0, x0 = y0 - window[0], x0 - window[2]
        y1, x1 = max(y1 - window[0], y0 + 1), max(x1 - window[2], x0 + 1)
        cell = mask[y0:y1, x0:x1]
        fractions[tile.row, tile.column] = cell.mean() if cell.size else 0
    return fractions


@pytest.mark.parametrize("factor", [1, 3, 8, 24])
@pytest.mark.parametrize("region", [Region(0, 0, 300, 520), Region(17, 5, 251, 377)])
def test_coarse_image_is_block_mean_of_the_whole_region(small_pieces, factor, region):
    rng = np.random.default_rng(factor)
    level = rng.integers(0, 256, (330, 540, 3), dtype=np.uint8)
    recording = RecordingLevel(level)
    expected = block_mean(
        level[region.y : region.y + region.height, region.x :][:, : region.width], factor
    )
    np.testing.assert_array_equal(coarse.coarse_image(recording, region, factor), expected)
    assert recording.largest_read_px <= (64 + factor) * (256 + factor)
    bands = list(coarse.coarse_bands(level, region, factor, band_rows=5))
    assert [y for y, _ in bands] == list(range(0, expected.shape[0], 5))
    np.testing.assert_array_equal(np.concatenate([b for _, b in bands]), expected)


@pytest.mark.parametrize("tile_px", [20, 24, 30])
def test_a_pyramid_with_the_coarse_level_keeps_its_tissue_fractions(pyramid_tiff, tile_px):
    # Level 1 has 10-15 px per tile: the stored level is used as before, bit for bit.
    with open_slide(pyramid_tiff) as slide:
        grid = TileGrid(Region(37, 53, 1001, 1333), tile_px)
        levels = slide.tile_sources
        assert _coarse_level(levels, 0, tile_px) == 1
        np.testing.assert_array_equal(
            tissue_fractions(levels, 0, grid), _old_tissue_fractions(levels, 0, grid)
        )


def _he_image(height: int, width: int) -> np.ndarray:
    # Positions chosen to show both tissue and glass at this size.
    return synthetic_he_tile(2400, 0, height, width, step=2.0)


def test_a_single_level_slide_is_reduced_like_the_pyramid_that_stores_its_means(small_pieces):
    level0 = _he_image(768, 1024)
    level1 = block_mean(level0, 8)  # 8 px per 64 px tile: the coarse level a pyramid stores
    grid = TileGrid(Region.whole(level0.shape[:2]), 64)
    single = RecordingLevel(level0)
    fractions = tissue_fractions([single], 0, grid)
    np.testing.assert_array_equal(fractions, tissue_fractions([level0, level1], 0, grid))
    assert 0 < (fractions >= 0.2).sum() < fractions.size  # tissue and glass
    assert single.largest_read_px <= small_pieces < level0.shape[0] * level0.shape[1] / 40


def test_no_sr_on_a_single_level_slide_reads_it_in_pieces(tmp_path, tiny_checkpoint, small_pieces):
    path = write_synthetic_slide(tmp_path / "single.tif", (768, 1024), tile_px=256, n_levels=1)
    with open_slide(path) as slide:
        assert len(slide.levels) == 1
        whole = np.asarray(slide.pixels[0])  # the old path's input, for the expected overview
        recording = RecordingLevel(slide.pixels[0])
        slide.pixels[0] = recording
        slide.levels[0] = da.from_array(recording, chunks=(256, 256, 3), asarray=True)
        result = api.process_slide(slide, tmp_path / "out", tiny_checkpoint, super_resolution=False)
    summary = result.summary
    assert summary["classification_tile_px"] == 64
    assert 0 < summary["tissue_tiles"] < summary["tiles"]
    overview = zarr.open_group(result.zarr_path, mode="r")["0"][:]
    np.testing.assert_array_equal(overview, block_mean(whole, 64 // 16).transpose(2, 0, 1))
    assert recording.reads > 1
    assert recording.largest_read_px <= small_pieces < whole.shape[0] * whole.shape[1] / 40
