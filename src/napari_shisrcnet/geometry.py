"""Pixel geometry shared by the engine, the results and the napari layer (a leaf module).

Conventions, one copy each:
- a :class:`Region` is a rectangle of whole pixels of one pyramid level;
- a :class:`PixelGrid` says where pixel centres lie in world (physical) coordinates:
  pixel (i, j) has its centre at ``translate + (i, j) * scale`` (napari and NGFF agree);
- a coarser grid whose pixel spans ``step`` pixels of its parent has its first centre
  ``(step - 1) / 2`` parent pixels in from the parent's first centre
  (:meth:`PixelGrid.coarser`); pyramid levels, SR outputs (step 1/scale) and tile maps
  (step = tile size) are all placed that way;
- downsampling is a block mean rounded half up, odd edges repeated (:func:`block_mean`).
"""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np

#: SR scale factors the network supports (the paper's x2, x4, x8).
SUPPORTED_SCALES = (2, 4, 8)


@dataclass(frozen=True)
class Region:
    """A rectangle in level pixel coordinates: rows [y, y + height), columns [x, x + width)."""

    y: int
    x: int
    height: int
    width: int

    @classmethod
    def whole(cls, shape: tuple[int, int]) -> Region:
        """The whole of a (height, width) image."""
        return cls(0, 0, int(shape[0]), int(shape[1]))

    def clipped_to(self, shape: tuple[int, int]) -> Region:
        """The part of this region inside a (height, width) image; raises if none is."""
        y0, x0 = max(self.y, 0), max(self.x, 0)
        y1, x1 = min(self.y + self.height, shape[0]), min(self.x + self.width, shape[1])
        if y1 <= y0 or x1 <= x0:
            raise ValueError(f"region {self} lies outside the {shape[1]}x{shape[0]} px image")
        return Region(y0, x0, y1 - y0, x1 - x0)

    @property
    def yxhw(self) -> list[int]:
        return [self.y, self.x, self.height, self.width]


@dataclass(frozen=True)
class PixelGrid:
    """Where a 2D array's pixel centres lie in world coordinates (y, x), and in what unit."""

    scale: tuple[float, float] = (1.0, 1.0)
    translate: tuple[float, float] = (0.0, 0.0)
    units: tuple[str, str] | None = None

    def coarser(self, step: float, origin_yx: tuple[float, float] = (0.0, 0.0)) -> PixelGrid:
        """The grid of an output whose pixel spans ``step`` of ours, starting at our pixel
        ``origin_yx`` (``step`` < 1 for a super-resolved output)."""
        offset = (step - 1.0) / 2.0
        (sy, sx), (ty, tx) = self.scale, self.translate
        return PixelGrid(
            (sy * step, sx * step),
            (ty + (origin_yx[0] + offset) * sy, tx + (origin_yx[1] + offset) * sx),
            self.units,
        )

    def layer_keywords(self) -> dict:
        """napari layer keywords placing data on this grid."""
        keywords: dict = {"scale": self.scale, "translate": self.translate}
        if self.units is not None:
            keywords["units"] = self.units
        return keywords


def physical_grid(mpp: float | None) -> PixelGrid:
    """Level pixels in micrometres when the pixel size is known, else in pixels."""
    if mpp:
        return PixelGrid((mpp, mpp), (0.0, 0.0), ("micrometer", "micrometer"))
    return PixelGrid()


def block_mean(array, factor: int, yx_axes: tuple[int, int] = (0, 1)):
    """``factor`` x ``factor`` block means of a uint8 numpy or dask array, rounded half up;
    an odd edge is repeated to fill its last block. Lazy for dask input."""
    pad = [(0, 0)] * array.ndim
    for axis in yx_axes:
        pad[axis] = (0, -array.shape[axis] % factor)
    padded = np.pad(array, pad, mode="edge") if any(p[1] for p in pad) else array
    blocks = {axis: factor for axis in yx_axes}
    if isinstance(padded, da.Array):
        total = da.coarsen(np.sum, padded.astype(np.uint32), blocks)
    else:
        shape = []
        for axis, length in enumerate(padded.shape):
            shape += [length // factor, factor] if axis in blocks else [length]
        total = padded.astype(np.uint32).reshape(shape).sum(axis=_block_axes(yx_axes))
    return ((total + factor * factor // 2) // (factor * factor)).astype(np.uint8)


def _block_axes(yx_axes: tuple[int, int]) -> tuple[int, ...]:
    """In the reshaped array each blocked axis a becomes (a', block): the block axes."""
    return tuple(axis + 1 + rank for rank, axis in enumerate(sorted(yx_axes)))


def halve(pixels: np.ndarray) -> np.ndarray:
    """(C, Y, X) uint8 -> (C, ceil(Y/2), ceil(X/2)): :func:`block_mean` with factor 2,
    written for speed (the output pyramid halves every chunk of a slide)."""
    _, height, width = pixels.shape
    if height % 2 or width % 2:
        pixels = np.pad(pixels, ((0, 0), (0, height % 2), (0, width % 2)), mode="edge")
    rows = pixels[:, 0::2].astype(np.uint16)  # widened once, at half the rows
    rows += pixels[:, 1::2]
    total = rows[:, :, 0::2] + rows[:, :, 1::2]
    total += 2
    total //= 4
    return total.astype(np.uint8)
