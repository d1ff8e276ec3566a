"""Tile grids with a halo of context, and reading a tile's window from a lazy image.

Cores partition the region (every pixel belongs to exactly one core). Each core is
read with ``halo_px`` of context on every side; all windows of a grid have the same
shape (the last row/column is shifted inward instead of shrunk), so tiles batch and
compile with a fixed shape. Context beyond the image border is reflected.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..geometry import Region

#: The engine reads tiles in vertical bands about this wide (level px), row by row within a
#: band, so the file tiles under a band's last rows are still in the slide's decoded-tile
#: cache when the next row needs them, however wide the level (io/slides.py).
READ_BAND_PX = 4096
#: SR context on each side of a tile, from the tiled-vs-whole measurement in docs/engine.md.
DEFAULT_HALO_PX = 32
#: SR tile cores on the CPU, where smaller tiles keep activations closer to the caches.
CPU_SR_TILE_PX = 256
#: SR tile cores on a CUDA GPU: the halo then recomputes 1.27x the core area instead of
#: 1.56x, and each output chunk (one core: 1024 px at x2) carries 4x the pixels for the
#: writer's fixed cost per chunk (benchmarks/write_throughput.py).
GPU_SR_TILE_PX = 512


@dataclass(frozen=True)
class Tile:
    """One grid cell: ``core`` and ``window`` are (y0, y1, x0, x1) in level pixels."""

    index: int
    row: int
    column: int
    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    def core_in_window(self, scale: int = 1) -> tuple[slice, slice]:
        """Where the core sits inside the window's (optionally upscaled) output."""
        y0, y1, x0, x1 = self.core
        wy, _, wx, _ = self.window
        return (
            slice((y0 - wy) * scale, (y1 - wy) * scale),
            slice((x0 - wx) * scale, (x1 - wx) * scale),
        )


def _axis_spans(
    start: int, length: int, tile_px: int, halo_px: int
) -> list[tuple[int, int, int, int]]:
    """(core0, core1, window0, window1) along one axis; windows all have the same length."""
    stop = start + length
    window_px = min(tile_px, length) + 2 * halo_px
    spans = []
    for core0 in range(start, stop, tile_px):
        core1 = min(core0 + tile_px, stop)
        window0 = min(core0 - halo_px, stop + halo_px - window_px)
        spans.append((core0, core1, window0, window0 + window_px))
    return spans


@dataclass(frozen=True)
class TileGrid:
    """A grid of ``tile_px`` cores over ``region`` with ``halo_px`` context."""

    region: Region
    tile_px: int
    halo_px: int = 0

    def __post_init__(self) -> None:
        if self.tile_px < 1 or self.halo_px < 0:
            raise ValueError(
                f"tile_px must be >= 1 and halo_px >= 0 (got {self.tile_px}, {self.halo_px})"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Tiles per column and per row."""
        return (-(-self.region.height // self.tile_px), -(-self.region.width // self.tile_px))

    @property
    def window_shape(self) -> tuple[int, int]:
        return (
            min(self.tile_px, self.region.height) + 2 * self.halo_px,
            min(self.tile_px, self.region.width) + 2 * self.halo_px,
        )

    def tiles(self) -> list[Tile]:
        rows = _axis_spans(self.region.y, self.region.height, self.tile_px, self.halo_px)
        columns = _axis_spans(self.region.x, self.region.width, self.tile_px, self.halo_px)
        return [
            Tile(i * len(columns) + j, i, j, (r[0], r[1], c[0], c[1]), (r[2], r[3], c[2], c[3]))
            for (i, r), (j, c) in product(enumerate(rows), enumerate(columns))
        ]

    def tiles_in_bands(self, band_px: int = READ_BAND_PX) -> list[Tile]:
        """:meth:`tiles` in reading order: bands of ~``band_px`` columns, rows inside each."""
        band_columns = max(1, band_px // self.tile_px)
        return sorted(self.tiles(), key=lambda t: (t.column // band_columns, t.row, t.column))


def read_window(image, window: tuple[int, int, int, int]) -> np.ndarray:
    """Read ``window`` (y0, y1, x0, x1) of a (Y, X, C) array; reflect beyond its border.

    ``image`` may be numpy, dask or zarr; only the in-bounds part is read.
    """
    height, width = image.shape[:2]
    y0, y1, x0, x1 = window
    inside = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    # Synchronous: each reader thread decodes its own tile; never ship file handles to a
    # dask.distributed scheduler that a caller may have made the default.
    inside = np.asarray(
        inside.compute(scheduler="synchronous") if hasattr(inside, "compute") else inside
    )
    pad = ((max(-y0, 0), max(y1 - height, 0)), (max(-x0, 0), max(x1 - width, 0)), (0, 0))
    if any(before or after for before, after in pad):
        inside = np.pad(inside, pad, mode="symmetric" if min(inside.shape[:2]) < 2 else "reflect")
    return inside
