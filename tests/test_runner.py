import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from napari_shisrcnet.engine.inference import TileModel, resolve_device
from napari_shisrcnet.engine.runner import (
    CancelToken,
    RunCancelled,
    make_batches,
    run_batches,
)
from napari_shisrcnet.engine.tiling import TileGrid
from napari_shisrcnet.geometry import Region


def _grid_batches(batch_size=3):
    tiles = TileGrid(Region(0, 0, 40, 50), tile_px=10).tiles()  # 4 x 5 = 20 tiles
    return tiles, make_batches(tiles, batch_size)


def _read(tile):
    return np.full((10, 10, 3), tile.index, np.uint8)


def test_every_tile_is_computed_and_written_once_with_progress():
    _, batches = _grid_batches()
    written, events = [], []
    run_batches(
        batches,
        _read,
        lambda w: w[:, 0, 0, 0].astype(np.int64),
        lambda batch, out: written.extend(zip((t.index for t in batch.tiles), out, strict=True)),
        output_pixels_per_tile=100,
        progress=events.append,
    )
    assert sorted(written) == [(i, i) for i in range(20)]  # each tile's own pixels, once
    assert [e.done for e in events] == [3, 6, 9, 12, 15, 18, 20]
    assert events[-1].total == 20 and events[-1].eta_s == 0 and events[-1].megapixels_per_s > 0


def test_cancel_stops_between_batches_and_keeps_what_was_written():
    _, batches = _grid_batches()
    token, written = CancelToken(), []

    def progress(event):
        if event.done >= 6:
            token.cancel()

    with pytest.raises(RunCancelled, match="cancelled after 6 of 20"):
        run_batches(
            batches,
            _read,
            lambda w: w[:, 0, 0, 0],
            lambda batch, out: written.append(batch.index),
            progress=progress,
            cancel=token,
        )
    # finished batches are flushed (by either writer thread), nothing after the cancel
    assert sorted(written) == [0, 1]


def test_writer_errors_reach_the_caller():
    _, batches = _grid_batches()

    def broken_write(batch, out):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_batches(batches, _read, lambda w: w[:, 0, 0, 0], broken_write)


def _pairing_write(timeout_s, written, threads):
    """A write that returns only once another write runs beside it."""
    beside = threading.Barrier(2, timeout=timeout_s)

    def write(batch, out):
        beside.wait()
        threads.add(threading.current_thread().name)
        written.extend(out.tolist())

    return write


def test_batches_are_written_concurrently_by_the_writer_threads():
    _, batches = _grid_batches(batch_size=4)
    written, threads = [], set()
    write = _pairing_write(10, written, threads)
    run_batches(batches[:4], _read, lambda w: w[:, 0, 0, 0].astype(int), write, writer_threads=2)
    assert sorted(written) == list(range(16)) and len(threads) == 2
    # The same write with a single writer thread never finds a partner.
    with pytest.raises(threading.BrokenBarrierError):
        lonely = _pairing_write(0.2, [], set())
        run_batches(batches[:4], _read, lambda w: w, lonely, writer_threads=1)


def test_reader_errors_reach_the_caller():
    _, batches = _grid_batches()

    def broken_read(tile):
        raise ValueError("corrupt JPEG tile")

    with pytest.raises(ValueError, match="corrupt JPEG tile"):
        run_batches(batches, broken_read, lambda w: w, lambda b, o: None)
    assert not any(t.name.startswith("shisrcnet-writer") for t in threading.enumerate())


class Doubler(nn.Module):
    """x2 nearest 'SR' that runs out of memory above two tiles per batch."""

    scale = 2

    def __init__(self, max_batch=2, nan_under_autocast=False):
        super().__init__()
        self.max_batch, self.nan_under_autocast = max_batch, nan_under_autocast
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        if len(x) > self.max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        out = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        if self.nan_under_autocast and torch.is_autocast_enabled("cpu"):
            out = out * float("nan")
        return out


def test_out_of_memory_halves_the_batch_and_keeps_it():
    module = Doubler(max_batch=2)
    model = TileModel(module, "cpu")
    tiles = np.random.default_rng(0).integers(0, 255, (8, 4, 4, 3), dtype=np.uint8)
    out = model.super_resolve(tiles)
    np.testing.assert_array_equal(out, tiles.repeat(2, axis=1).repeat(2, axis=2))
    assert model.max_batch == 2
    module.calls.clear()
    model.super_resolve(tiles)
    assert module.calls == [2, 2, 2, 2]  # the smaller batch is remembered


def test_non_finite_autocast_output_is_recomputed_in_fp32():
    model = TileModel(Doubler(max_batch=99, nan_under_autocast=True), "cpu")
    model.autocast_dtype = torch.bfloat16  # CPU autocast stands in for CUDA here
    tiles = np.full((2, 4, 4, 3), 100, np.uint8)
    assert np.all(model.super_resolve(tiles) == 100)


def test_device_resolution():
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


class _Later:
    """A result still 'on the device': resolved only when the writer asks for it."""

    def __init__(self, value, resolved):
        self.value, self.resolved = value, resolved

    def result(self):
        self.resolved.append(threading.current_thread().name)
        return self.value


@pytest.mark.parametrize("writer_threads", [1, 3])
def test_pending_results_are_resolved_by_the_writers(writer_threads):
    _, batches = _grid_batches()
    resolved, written = [], []
    run_batches(
        batches,
        _read,
        lambda w: _Later(w[:, 0, 0, 0].astype(np.int64), resolved),
        lambda batch, out: written.extend(out.tolist()),
        writer_threads=writer_threads,
    )
    if writer_threads == 1:
        assert written == list(range(20))  # one writer keeps the batch order
    assert sorted(written) == list(range(20))
    assert len(resolved) == 7 and all(name.startswith("shisrcnet-writer") for name in resolved)


def test_compiled_model_pads_short_batches_so_one_graph_serves_the_run():
    from torch._dynamo.utils import counters

    from napari_shisrcnet.model import SRMFENet

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    network = SRMFENet(scale=2, channels=8, n_blocks=1)
    tiles = np.random.default_rng(0).integers(0, 256, (4, 24, 24, 3), dtype=np.uint8)
    eager = TileModel(network, "cpu").super_resolve(tiles)
    compiled = TileModel(network, "cpu", compile=True)
    np.testing.assert_array_equal(compiled.super_resolve(tiles), eager)
    short = compiled.super_resolve(tiles[:3])
    assert short.shape == (3, 48, 48, 3)
    np.testing.assert_array_equal(short, eager[:3])
    assert counters["stats"]["unique_graphs"] == 1  # the short batch did not recompile
    from napari_shisrcnet.engine.inference import _uncompiled

    assert _uncompiled(compiled.sr_module) is network  # what an fp32 retry runs, eagerly


def test_a_pending_device_result_waits_for_its_copy_and_retries_non_finite():
    from napari_shisrcnet.engine.inference import PendingResult

    class Event:  # stands in for torch.cuda.Event
        waited = 0

        def synchronize(self):
            Event.waited += 1

    host = torch.arange(6, dtype=torch.uint8).reshape(2, 3)
    ready = PendingResult(event=Event(), host=host, finite=torch.tensor(True), retry=None)
    np.testing.assert_array_equal(ready.result(), host.numpy())
    retried = PendingResult(
        event=Event(), host=host, finite=torch.tensor(False), retry=lambda: np.zeros(2)
    )
    np.testing.assert_array_equal(retried.result(), np.zeros(2))
    assert retried.result() is retried.result()  # resolved once, then remembered
    assert Event.waited == 2


def test_compiled_batch_padding_is_kept_per_module_and_tile_shape():
    model = TileModel(Doubler(max_batch=99), "cpu")
    model.compiled = True  # only the padding rule is under test here (no compile cost)
    sr, classifier = object(), object()
    tiles = np.zeros((8, 4, 4, 3), np.uint8)
    assert len(model._fixed_batch(tiles[:3], sr)) == 3  # a short first batch ...
    assert len(model._fixed_batch(tiles, sr)) == 8  # ... does not cap later ones
    assert len(model._fixed_batch(tiles[:3], sr)) == 8  # short ones now reuse the 8-graph
    assert len(model._fixed_batch(tiles[:2], classifier)) == 2  # another module: its own size
    assert len(model._fixed_batch(np.zeros((2, 6, 6, 3), np.uint8), sr)) == 2  # another shape
    model.max_batch = 4  # after an out-of-memory split
    assert len(model._fixed_batch(tiles[:3], sr)) == 4


@pytest.mark.parametrize("writer_threads", [1, 2, 4])
def test_at_most_six_computed_batches_wait_to_be_written(writer_threads):
    tiles = TileGrid(Region(0, 0, 100, 100), tile_px=10).tiles()  # 100 tiles
    waiting, peak, lock = [0], [0], threading.Lock()

    def compute(windows):
        with lock:
            waiting[0] += 1
            peak[0] = max(peak[0], waiting[0])
        return windows[:, 0, 0, 0]

    def slow_write(batch, out):
        time.sleep(0.01)  # writing is the bottleneck: batches pile up if nothing bounds them
        with lock:
            waiting[0] -= 1

    run_batches(make_batches(tiles, 2), _read, compute, slow_write, writer_threads=writer_threads)
    assert 2 <= peak[0] <= 6
