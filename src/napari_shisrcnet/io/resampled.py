"""A pyramid level read at another pixel size: what the engine tiles when a slide is read at
a model's µm/px rather than at a level as stored.

Output pixel ``o`` of a level resampled by ``factor`` (source pixels per output pixel)
covers source pixels ``[o * factor, (o + 1) * factor)``. Downsampling (factor > 1) averages
exactly that area (from prefix sums, so a wide window costs what reading it costs);
upsampling (factor < 1) interpolates linearly between the two nearest source pixel centres.
Either way an output pixel depends only on its own position, never on the window it was
read in, so tiles read separately fit together without seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import PixelGrid

#: Within this relative distance of 1 a level is read as stored (no resampling).
NATIVE_TOLERANCE = 0.02


def snapped(factor: float) -> float:
    """``factor``, or exactly 1 (read as stored) within :data:`NATIVE_TOLERANCE` of it."""
    return 1.0 if abs(factor - 1.0) <= NATIVE_TOLERANCE else float(factor)


def resampled_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """A (height, width) level's size read at ``factor`` stored pixels per pixel."""
    factor = snapped(factor)
    if factor == 1.0:
        return (int(shape[0]), int(shape[1]))
    return max(1, round(shape[0] / factor)), max(1, round(shape[1] / factor))


def _source_span(start: int, stop: int, factor: float) -> tuple[int, int]:
    """Source indices [first, last) that outputs [start, stop) depend on."""
    if factor >= 1:
        return math.floor(start * factor), max(
            math.ceil(stop * factor), math.floor(start * factor) + 1
        )
    first = math.floor((start + 0.5) * factor - 0.5)
    return first, math.floor((stop - 0.5) * factor - 0.5) + 2


def _resample_axis(values: np.ndarray, first: int, start: int, stop: int, factor: float):
    """Outputs [start, stop) along axis 0 of ``values`` (source rows from ``first``)."""
    n = values.shape[0]
    # Positions and fractions in source coordinates, then indices into this block: the
    # arithmetic for an output never depends on where the block starts.
    shape = (-1, *([1] * (values.ndim - 1)))
    if factor >= 1:  # each output: the mean over its footprint, from prefix sums (O(n))
        edges = np.arange(start, stop + 1, dtype=np.float64) * factor
        whole = np.floor(edges)
        index = np.clip(whole.astype(np.int64) - first, 0, n - 1)
        fraction = np.where(whole.astype(np.int64) - first > n - 1, 1.0, edges - whole)
        prefix = np.concatenate([np.zeros_like(values[:1]), np.cumsum(values, axis=0)])
        integral = prefix[index] + fraction.reshape(shape) * values[index]
        return (integral[1:] - integral[:-1]) / factor
    centres = (np.arange(start, stop, dtype=np.float64) + 0.5) * factor - 0.5
    lower = np.floor(centres)
    weight = (centres - lower).reshape(shape)
    low = np.clip(lower.astype(np.int64) - first, 0, n - 1)
    high = np.clip(lower.astype(np.int64) + 1 - first, 0, n - 1)
    return values[low] * (1 - weight) + values[high] * weight


class ResampledLevel:
    """``source`` (a (Y, X, 3) uint8 level: RGBLevel, dask or numpy) read at ``factor``
    source pixels per pixel; sliced like a (Y, X, 3) uint8 array."""

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, source, factor: float) -> None:
        self.source, self.factor = source, float(factor)
        height, width = source.shape[:2]
        self.shape = (*resampled_shape((height, width), factor), 3)

    def _read(self, rows: tuple[int, int], columns: tuple[int, int]) -> np.ndarray:
        """Source pixels [rows) x [columns), the edge repeated beyond the source."""
        height, width = self.source.shape[:2]
        (y0, y1), (x0, x1) = rows, columns
        inside = (slice(max(y0, 0), min(y1, height)), slice(max(x0, 0), min(x1, width)))
        block = np.asarray(self.source[inside], dtype=np.float64)
        pad = ((max(-y0, 0), max(y1 - height, 0)), (max(-x0, 0), max(x1 - width, 0)), (0, 0))
        return np.pad(block, pad, mode="edge") if any(sum(p) for p in pad) else block

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        rows, columns, channels = (*key, slice(None), slice(None), slice(None))[:3]
        (y0, y1, _), (x0, x1, _) = rows.indices(self.shape[0]), columns.indices(self.shape[1])
        row_span, column_span = _source_span(y0, y1, self.factor), _source_span(x0, x1, self.factor)
        block = self._read(row_span, column_span)
        block = _resample_axis(block, row_span[0], y0, y1, self.factor)
        block = _resample_axis(block.swapaxes(0, 1), column_span[0], x0, x1, self.factor)
        pixels = np.clip(block.swapaxes(0, 1) + 0.5, 0, 255).astype(np.uint8)
        return pixels[..., channels]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        pixels = self[:, :]
        return pixels if dtype is None else pixels.astype(dtype)


@dataclass(frozen=True)
class LevelView:
    """The pixels a job reads: a pyramid level, as stored or resampled.

    ``pixels`` is what tiles are read from, ``grid``
    where its pixel centres lie, ``downsample`` level-0 pixels per pixel, ``mpp`` its µm/px
    (None if unknown), ``factor`` the resampling of the stored level (1: as stored), and
    ``coarser`` the slide's stored levels coarser than it (for tissue detection).
    """

    pixels: object
    grid: PixelGrid
    downsample: float
    mpp: float | None
    factor: float
    coarser: tuple

    @property
    def tissue_levels(self) -> list:
        """This view, then the coarser stored levels: a pyramid for tissue detection."""
        return [self.pixels, *self.coarser]


def level_view(slide, level: int, factor: float = 1.0) -> LevelView:
    """``slide``'s ``level`` read at ``factor`` stored pixels per pixel (1: as stored)."""
    meta, sources = slide.metadata, slide.tile_sources
    factor = snapped(factor)
    pixels = sources[level] if factor == 1.0 else ResampledLevel(sources[level], factor)
    downsample = meta.level_downsamples[level] * factor
    coarser = tuple(
        sources[i]
        for i in range(level + 1, len(sources))
        if meta.level_downsamples[i] > downsample * (1 + NATIVE_TOLERANCE)
    )
    mpp = None if meta.mpp is None else meta.mpp * downsample
    grid = meta.grid.coarser(downsample)
    return LevelView(pixels, grid, downsample, mpp, factor, coarser)
