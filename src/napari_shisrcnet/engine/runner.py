"""The batched tile pipeline: reader threads -> compute -> writer threads.

Reading (a thread pool, a few batches ahead), compute (the calling thread) and
writing (a few threads; compressing output chunks is the costliest host work once a GPU
computes) overlap. Batches may be written in any order and at the same time, so the
``write`` of one batch must never touch an output chunk another batch writes (the
engine's outputs have one chunk per tile).
``compute`` may return its result unfinished (anything with a ``result()`` method, such
as a GPU batch still being copied back); a writer thread waits for it, so the
calling thread goes on submitting work.
Batches are fixed slices of the tile list, so a resumed run recomputes exactly the
batches an uninterrupted run would, and ends bit-identical. Progress goes to a
callback; a cancel token is checked between batches.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..host import PeriodicTrim, available_cores
from .tiling import Tile

#: One writer thread wrote ~106 output MP/s of SR tiles in 512 px chunks on the 2-core
#: runner (benchmarks/write_throughput.py); a GPU computes 250-540, so writing is spread out.
DEFAULT_WRITER_THREADS = min(4, available_cores())
#: Computed batches not yet written (queued, held by a writer thread, or being handed
#: over by the compute thread), with up to 4 writer threads: bounds the results held in
#: host memory and the batches in flight on a GPU.
MAX_BATCHES_IN_FLIGHT = 6


class PendingBatch(Protocol):
    """A computed batch still on its way (e.g. from a GPU); ``result()`` waits for it."""

    def result(self) -> np.ndarray: ...


class RunCancelled(Exception):
    """Raised when a run stops because its :class:`CancelToken` was set."""


class CancelToken:
    """Thread-safe cancellation flag, checked between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands: ``done`` of ``total`` tiles, output megapixels per second, ETA."""

    stage: str
    done: int
    total: int
    elapsed_s: float
    megapixels_per_s: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class Batch:
    index: int
    tiles: tuple[Tile, ...]


def make_batches(tiles: Sequence[Tile], batch_size: int) -> list[Batch]:
    return [
        Batch(i // batch_size, tuple(tiles[i : i + batch_size]))
        for i in range(0, len(tiles), batch_size)
    ]


def pending_batches(
    batches: Sequence[Batch], done: AbstractSet[int], shard: tuple[int, int] | None = None
) -> list[Batch]:
    """Batches this process still computes: not ``done``, and in its ``shard``.

    Shard (k, n) takes batches k, k + n, k + 2n, ... (worker k of n on a cluster).
    """
    return [
        b
        for b in batches
        if b.index not in done and (shard is None or b.index % shard[1] == shard[0])
    ]


class _Writers:
    """Threads applying ``write`` to computed batches; remember the first error."""

    def __init__(self, write: Callable[[Batch, np.ndarray], None], threads: int) -> None:
        self.write = write
        threads = max(1, threads)
        # A queued result may be a pending device batch; each writer holds one more, and
        # the compute thread one while it waits to queue it.
        queued = max(1, MAX_BATCHES_IN_FLIGHT - threads - 1)
        self.jobs: queue.Queue = queue.Queue(maxsize=queued)
        self.error: BaseException | None = None
        self.trim = PeriodicTrim()  # freed tile buffers back to the OS: flat peak RSS
        self.threads = [
            threading.Thread(target=self._work, name=f"shisrcnet-writer-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is None:
                try:
                    batch, results = job
                    if hasattr(results, "result"):
                        results = results.result()
                    self.write(batch, results)
                    self.trim()
                except BaseException as error:  # re-raised on the calling thread
                    self.error = self.error or error

    def finish(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        if self.error is not None:
            raise self.error


def run_batches(
    batches: Sequence[Batch],
    read: Callable[[Tile], np.ndarray],
    compute: Callable[[np.ndarray], np.ndarray | PendingBatch],
    write: Callable[[Batch, np.ndarray], None],
    *,
    stage: str = "tiles",
    total_tiles: int | None = None,
    output_pixels_per_tile: float = 0.0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    reader_threads: int = 4,
    writer_threads: int = DEFAULT_WRITER_THREADS,
    prefetch_batches: int = 2,
) -> None:
    """Read, compute and write ``batches``; raise :class:`RunCancelled` if cancelled.

    Whatever was written before a cancel or an error stays written (and resumable);
    ``write`` for a batch is called only after the whole batch was computed; with
    ``writer_threads`` > 1 batches are written concurrently and may finish out of order.
    """
    total = total_tiles if total_tiles is not None else sum(len(b.tiles) for b in batches)
    already = total - sum(len(b.tiles) for b in batches)
    writer = _Writers(write, writer_threads)
    start = time.perf_counter()
    done = already
    with ThreadPoolExecutor(reader_threads, thread_name_prefix="shisrcnet-reader") as readers:
        reads: dict[int, list[Future]] = {}

        def schedule(position: int) -> None:
            if position < len(batches) and position not in reads:
                reads[position] = [readers.submit(read, t) for t in batches[position].tiles]

        try:
            for position, batch in enumerate(batches):
                for ahead in range(position, position + prefetch_batches + 1):
                    schedule(ahead)
                if cancel is not None and cancel.cancelled:
                    raise RunCancelled(f"cancelled after {done} of {total} {stage}")
                windows = np.stack([future.result() for future in reads.pop(position)])
                results = compute(windows)
                if writer.error is not None:
                    break
                writer.jobs.put((batch, results))
                done += len(batch.tiles)
                if progress is not None:
                    progress(_event(stage, done, already, total, start, output_pixels_per_tile))
        finally:
            for futures in reads.values():
                for future in futures:
                    future.cancel()
            writer.finish()


def _event(stage, done, already, total, start, pixels_per_tile) -> ProgressEvent:
    elapsed = max(time.perf_counter() - start, 1e-9)
    rate_tiles = (done - already) / elapsed
    eta = (total - done) / rate_tiles if rate_tiles > 0 else None
    return ProgressEvent(stage, done, total, elapsed, rate_tiles * pixels_per_tile / 1e6, eta)
