"""The output pyramid: every level is the 2x2 mean of the one above, whatever the shape,
whichever process wrote level 0 and whenever the pyramid was built."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import zarr

from napari_shisrcnet.geometry import PixelGrid, halve, physical_grid
from napari_shisrcnet.results import pyramid as pyramid_module
from napari_shisrcnet.results.store import ResultStore

SHAPE, CHUNK = (301, 517), 32  # odd sides: the last chunk row and column are partial


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


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(pyramid_module, "PYRAMID_MIN_SIDE_PX", 40)  # 4 levels
    store = ResultStore(tmp_path / "out.ome.zarr").open({"run": 1})
    store.image_level0(SHAPE, chunk_px=CHUNK)
    return store


@pytest.fixture
def image():
    return np.random.default_rng(1).integers(0, 256, (3, *SHAPE), dtype=np.uint8)


def _corners():
    """Level-0 chunk corners in the engine's order: column bands, rows inside each."""
    band = 4 * CHUNK
    corners = [(y, x) for y in range(0, SHAPE[0], CHUNK) for x in range(0, SHAPE[1], CHUNK)]
    return sorted(corners, key=lambda c: (c[1] // band, c[0], c[1]))


def _write_tiles(store, image, pyramid, corners, threads=4):
    level0 = store.group["0"]

    def write(corner):
        y, x = corner
        level0[:, y : y + CHUNK, x : x + CHUNK] = image[:, y : y + CHUNK, x : x + CHUNK]
        pyramid.level0_written(y, x)

    with ThreadPoolExecutor(threads) as pool:  # like the engine's writer threads
        list(pool.map(write, corners))


def _assert_pyramid(path, image, n_levels):
    group = zarr.open_group(path, mode="r")
    expected = image
    for level in range(1, n_levels):
        expected = reference_halve(expected)
        np.testing.assert_array_equal(group[str(level)][:], expected)
        assert group[str(level)].chunks == (3, CHUNK, CHUNK)
    assert str(n_levels) not in group


def test_the_pyramid_of_a_finished_level_0(store, image):
    store.group["0"][:] = image  # written by another process: no chunk was announced
    assert store.finish_image(physical_grid(0.5), "test") == 4
    _assert_pyramid(store.path, image, 4)


def test_the_pyramid_grows_while_level_0_is_written(store, image):
    pyramid = store.pyramid_builder()
    _write_tiles(store, image, pyramid, _corners())
    pyramid.wait()
    # Every chunk of every level was built as its sources were written: levels 1-3 are
    # 151x259, 76x130 and 38x65 px, in 5x9, 3x5 and 2x3 chunks of 32 px.
    assert pyramid.chunks_built == [45, 15, 6]
    store.group["0"][:] = 0  # finishing never reads level 0 again
    assert store.finish_image(physical_grid(0.5), "test", pyramid) == 4
    _assert_pyramid(store.path, image, 4)


def test_a_resumed_run_builds_what_its_own_tiles_do_not_complete(store, image):
    corners = _corners()
    interrupted = store.pyramid_builder()
    _write_tiles(store, image, interrupted, corners[:50])
    interrupted.close()  # the run stops here; a new process resumes
    resumed = store.pyramid_builder()
    _write_tiles(store, image, resumed, corners[50:])
    resumed.wait()
    assert 0 < resumed.chunks_built[0] < 45  # chunks that straddle both runs wait for finish
    store.finish_image(physical_grid(0.5), "test", resumed)
    _assert_pyramid(store.path, image, 4)


def test_a_failed_chunk_is_reported_and_nothing_claims_completion(store, image, monkeypatch):
    def broken_halve(pixels):
        raise OSError("disk full")

    monkeypatch.setattr(pyramid_module, "halve", broken_halve)
    pyramid = store.pyramid_builder()
    _write_tiles(store, image, pyramid, _corners())
    with pytest.raises(OSError, match="disk full"):
        store.finish_image(physical_grid(0.5), "test", pyramid)
    assert "multiscales" not in store.group.attrs


def test_a_single_level_image_has_no_pyramid(tmp_path):
    store = ResultStore(tmp_path / "out.ome.zarr").open({"run": 1})
    store.image_level0((100, 120), chunk_px=64)
    assert store.finish_image(PixelGrid(), "small") == 1
    assert list(zarr.open_group(tmp_path / "out.ome.zarr", mode="r").array_keys()) == ["0"]


def test_announcing_chunks_to_a_closed_builder_fails_instead_of_hanging(store, image):
    pyramid = store.pyramid_builder()
    pyramid.close()  # e.g. the run was cancelled while a writer thread still finished a tile
    _write_tiles(store, image, pyramid, _corners()[:8], threads=1)
    with pytest.raises(RuntimeError, match="shutdown"):
        pyramid.finish()


def test_levels_are_written_without_zarrs_empty_chunk_check(store):
    # zarr reopens arrays with write_empty_chunks=False, which compares every written chunk
    # with the fill value first (1.5-2.3x slower writes); the engine's writes skip that.
    assert store.group["0"].config.write_empty_chunks is False  # zarr's default on reopening
    resumed = ResultStore(store.path).open({"run": 1})
    assert resumed.image_level0(SHAPE, chunk_px=CHUNK).config.write_empty_chunks
    assert all(level.config.write_empty_chunks for level in resumed.pyramid_builder().levels)
