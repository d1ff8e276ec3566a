import numpy as np
import pytest

from napari_shisrcnet import host as host_memory
from napari_shisrcnet.engine.runner import make_batches, run_batches
from napari_shisrcnet.engine.tiling import TileGrid
from napari_shisrcnet.geometry import Region, physical_grid
from napari_shisrcnet.host import PeriodicTrim, release_free_memory
from napari_shisrcnet.results.store import ResultStore


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


@pytest.fixture
def counted_trims(monkeypatch):
    calls = []
    monkeypatch.setattr(host_memory, "_MALLOC_TRIM", calls.append)
    return calls


@pytest.mark.skipif(host_memory._MALLOC_TRIM is None, reason="needs glibc's malloc_trim")
def test_freed_heap_fragments_go_back_to_the_os():
    # 128 MB of 64 kB buffers (below the mmap threshold, so on the heap); keeping every
    # 16th pins the heap, so free() alone cannot shrink it.
    buffers = [bytearray(64 * 1024) for _ in range(2000)]
    kept = buffers[::16]
    del buffers
    before = _resident_mb()
    assert release_free_memory()
    assert before - _resident_mb() > 60  # most of the 120 MB freed is returned
    assert len(kept) == 125


def test_release_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(host_memory, "_MALLOC_TRIM", None)
    assert release_free_memory() is False


def test_periodic_trim_calls_at_most_once_per_interval(counted_trims):
    hourly = PeriodicTrim(interval_s=3600)
    for _ in range(5):
        hourly()
    assert counted_trims == []  # its interval starts when it is made
    always = PeriodicTrim(interval_s=0)
    for _ in range(3):
        always()
    assert counted_trims == [0, 0, 0]


def test_the_tile_writer_and_the_pyramid_builder_trim(counted_trims, monkeypatch, tmp_path):
    monkeypatch.setattr(host_memory, "TRIM_INTERVAL_S", 0.0)
    tiles = TileGrid(Region(0, 0, 40, 50), tile_px=10).tiles()
    run_batches(make_batches(tiles, 4), lambda t: np.zeros((10, 10, 3)), lambda w: w, _ignore)
    assert len(counted_trims) == 5  # once per written batch at interval 0
    store = ResultStore(tmp_path / "r.ome.zarr").open({"run": 1})
    store.image_level0((1200, 1000), 256)[:] = 7
    counted_trims.clear()
    store.finish_image(physical_grid(0.5), "test")
    assert len(counted_trims) >= 3  # every block of the 600 x 500 px level 1, at least


def _ignore(batch, results) -> None:
    pass
