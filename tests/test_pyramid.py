"""The output pyramid: every level is the 2x2 mean of the one above, whatever the shape."""

import numpy as np
import pytest
import zarr

from napari_shisrcnet.io import ome_zarr
from napari_shisrcnet.io.ome_zarr import ResultStore, halve


def reference_halve(pixels: np.ndarray) -> np.ndarray:
    _, height, width = pixels.shape
    padded = np.pad(pixels, ((0, 0), (0, height % 2), (0, width % 2)), mode="edge")
    blocks = padded.reshape(3, padded.shape[1] // 2, 2, padded.shape[2] // 2, 2)
    return np.floor(blocks.astype(np.float64).mean(axis=(2, 4)) + 0.5).astype(np.uint8)


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 7, 9), (3, 1, 5)])
def test_halve_is_the_rounded_two_by_two_mean_with_edge_repeat(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    pixels[:, 0, :2] = 255  # the uint8 sum would overflow without widening
    np.testing.assert_array_equal(halve(pixels), reference_halve(pixels))


def test_every_level_of_an_odd_sized_multi_block_image(tmp_path, monkeypatch):
    # Small blocks, so level 1 is written as many blocks by several threads.
    monkeypatch.setattr(ome_zarr, "PYRAMID_BLOCK_PX", 64)
    monkeypatch.setattr(ome_zarr, "PYRAMID_MIN_SIDE_PX", 40)
    store = ResultStore(tmp_path / "out.ome.zarr", {"run": 1})
    level0 = store.image_level0((301, 517), chunk_px=32)
    image = np.random.default_rng(1).integers(0, 256, (3, 301, 517), dtype=np.uint8)
    level0[:] = image
    n_levels = store.finish_image(0.5, (0.0, 0.0), "micrometer", "test")
    group = zarr.open_group(tmp_path / "out.ome.zarr", mode="r")
    assert n_levels == 4
    expected = image
    for level in range(1, n_levels):
        expected = reference_halve(expected)
        np.testing.assert_array_equal(group[str(level)][:], expected)
        assert group[str(level)].chunks == (3, 32, 32)
