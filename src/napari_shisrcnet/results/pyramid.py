"""The output image pyramid, built chunk by chunk while level 0 is still being written.

Level ``L + 1`` is the 2x2 mean of level ``L`` (:func:`napari_shisrcnet.geometry.halve`).
Every level has the chunks of level 0, so a chunk of level ``L + 1`` is made from the (up
to) 2x2 chunks of level ``L`` under it; it is built as soon as those are written. SR tiles
fill whole level-0 chunks, so during a run the pyramid grows behind the tiles (in their
band order a level-1 chunk is ready two tile rows later) on a few threads: on a GPU this
host work overlaps the network instead of following it, and level 0 is read back while its
chunks are still in the page cache.
Chunks whose sources were written by another process or an earlier run never complete
here; :meth:`PyramidBuilder.finish` builds whatever is left, so the result is the same
however the run went. Memory is a few bytes of bookkeeping per chunk plus one chunk's
pixels per thread, whatever the slide size.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import zarr

from ..geometry import halve
from ..host import PeriodicTrim, available_cores

PYRAMID_MIN_SIDE_PX = 256
PYRAMID_THREADS = min(4, available_cores())


def pyramid_level_count(shape: tuple[int, int]) -> int:
    """Halve until the longest side would drop below ``PYRAMID_MIN_SIDE_PX``."""
    levels, longest = 1, max(shape)
    while longest // 2 >= PYRAMID_MIN_SIDE_PX:
        levels, longest = levels + 1, longest // 2
    return levels


def _chunk_grid(array: zarr.Array) -> tuple[int, int]:
    _, height, width = array.shape
    _, chunk_y, chunk_x = array.chunks
    return -(-height // chunk_y), -(-width // chunk_x)


def _sources_per_chunk(source_grid: tuple[int, int], target_grid: tuple[int, int]) -> np.ndarray:
    """How many source chunks (1, 2 or 4) lie under each target chunk."""
    rows = np.minimum(2, source_grid[0] - 2 * np.arange(target_grid[0]))
    columns = np.minimum(2, source_grid[1] - 2 * np.arange(target_grid[1]))
    return np.outer(rows, columns).astype(np.int8)


class PyramidBuilder:
    """Builds levels 1.. of ``levels`` (all (3, Y, X) uint8 with equal chunks) as their
    sources are written; call :meth:`chunk_written` for each finished level-0 chunk and
    :meth:`finish` at the end (or :meth:`close` to abandon the run)."""

    def __init__(self, levels: list[zarr.Array], threads: int = PYRAMID_THREADS) -> None:
        self.levels = levels
        self._chunk_px = levels[0].chunks[1:]
        grids = [_chunk_grid(level) for level in levels]
        # Per level above 0: source chunks still to come, and chunks built (by this builder).
        above_0 = range(1, len(levels))
        self._waiting = {i: _sources_per_chunk(grids[i - 1], grids[i]) for i in above_0}
        self._built = {i: np.zeros(grids[i], bool) for i in above_0}
        self._lock = threading.Condition()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="shisrcnet-pyramid")
        self._trim = PeriodicTrim()
        self.error: BaseException | None = None

    def chunk_written(self, level: int, chunk_y: int, chunk_x: int) -> None:
        """Chunk (chunk_y, chunk_x) of ``level`` holds its final pixels."""
        above = level + 1
        if above >= len(self.levels):
            return
        target = (chunk_y // 2, chunk_x // 2)
        with self._lock:
            self._waiting[above][target] -= 1
            if self._waiting[above][target] != 0:
                return
        self._submit(above, target)

    def _submit(self, level: int, target: tuple[int, int]) -> None:
        with self._lock:
            self._in_flight += 1
        try:
            self._pool.submit(self._build, level, target)
        except BaseException as error:  # e.g. the pool was closed, or Python is exiting
            self.error = self.error or error
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    def level0_written(self, y: int, x: int) -> None:
        """The level-0 chunk starting at pixel (y, x) holds its final pixels."""
        chunk_y, chunk_x = self._chunk_px
        if y % chunk_y or x % chunk_x:
            raise ValueError(f"({y}, {x}) is not the corner of a level-0 chunk")
        self.chunk_written(0, y // chunk_y, x // chunk_x)

    def _build(self, level: int, target: tuple[int, int]) -> None:
        try:
            if self.error is None:
                (chunk_y, chunk_x), (row, column) = self._chunk_px, target
                y, x = row * chunk_y, column * chunk_x
                source = np.asarray(
                    self.levels[level - 1][:, 2 * y : 2 * (y + chunk_y), 2 * x : 2 * (x + chunk_x)]
                )
                halved = halve(source)
                self.levels[level][:, y : y + halved.shape[1], x : x + halved.shape[2]] = halved
                self._built[level][target] = True
                self._trim()
                self.chunk_written(level, row, column)
        except BaseException as error:  # raised by finish()
            self.error = self.error or error
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    @property
    def chunks_built(self) -> list[int]:
        """Chunks built so far, per level above 0."""
        return [int(built.sum()) for built in self._built.values()]

    def wait(self) -> None:
        """Block until no chunk is being built."""
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0)

    def finish(self) -> None:
        """Build every chunk not built yet, level by level; raise the first build error."""
        try:
            self.wait()
            for level in range(1, len(self.levels)):
                # Level L-1 is complete here (its builds ended with the last wait), and
                # builds of level L only start builds of level L + 1.
                for row, column in zip(*np.nonzero(~self._built[level]), strict=True):
                    self._submit(level, (int(row), int(column)))
                self.wait()
            if self.error is not None:
                raise self.error
        finally:
            self.close()

    def close(self) -> None:
        """Stop: wait for chunks being built, start no more."""
        self._pool.shutdown(wait=True, cancel_futures=True)
