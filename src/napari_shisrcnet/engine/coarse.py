"""A coarse copy of a region, made by streaming block means in bounded memory.

Tissue detection and the overview written without SR need the region at a few pixels per
tile. A pyramidal slide may store such a level; a single-level slide does not, and reading
its region whole costs the full level (a 40,000 px side is 4.8 GB of uint8, several times
that while it is converted). Here the region is read piece by piece, each piece is reduced
with :func:`~napari_shisrcnet.geometry.block_mean` at once and only the small result is
kept. Pieces start on multiples of the factor from the region's corner, so the result is
``block_mean`` of the whole region bit for bit. Pieces are read in vertical bands, rows
inside each, as the SR engine reads, so the slide's decoded-tile cache serves the file
tiles that two pieces share, however wide the level.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..geometry import Region, block_mean
from .tiling import READ_BAND_PX, read_window

#: Level rows per piece (rounded to a multiple of the factor): a piece of 512 x 4,096 px is
#: 6 MB of uint8, 25 MB while its blocks are summed.
PIECE_ROWS_PX = 512


def _multiple(length_px: int, factor: int) -> int:
    """``length_px`` rounded to a multiple of ``factor`` (at least one block)."""
    return max(1, round(length_px / factor)) * factor


def coarse_shape(region: Region, factor: int) -> tuple[int, int]:
    """(rows, columns) of the region reduced by ``factor`` (a partial last block counts)."""
    return (-(-region.height // factor), -(-region.width // factor))


def coarse_bands(
    source, region: Region, factor: int, band_rows: int
) -> Iterator[tuple[int, np.ndarray]]:
    """``block_mean`` of ``region`` of ``source`` (a (Y, X, 3) uint8 level: numpy, dask or
    an RGBLevel), ``band_rows`` output rows at a time: yields (first output row, band).

    Memory: one output band plus one piece of about 512 x 4,096 level px.
    """
    rows, columns = coarse_shape(region, factor)
    piece_rows, piece_columns = _multiple(PIECE_ROWS_PX, factor), _multiple(READ_BAND_PX, factor)
    for band_y in range(0, rows, band_rows):
        band = np.empty((min(band_rows, rows - band_y), columns, 3), np.uint8)
        y_start = region.y + band_y * factor
        y_stop = min(region.y + (band_y + band.shape[0]) * factor, region.y + region.height)
        for x0 in range(region.x, region.x + region.width, piece_columns):
            x1 = min(x0 + piece_columns, region.x + region.width)
            for y0 in range(y_start, y_stop, piece_rows):
                y1 = min(y0 + piece_rows, y_stop)
                piece = block_mean(read_window(source, (y0, y1, x0, x1)), factor)
                out_y, out_x = (y0 - y_start) // factor, (x0 - region.x) // factor
                band[out_y : out_y + piece.shape[0], out_x : out_x + piece.shape[1]] = piece
        yield band_y, band


def coarse_image(source, region: Region, factor: int) -> np.ndarray:
    """``block_mean(source[region], factor)`` as a (Y, X, 3) uint8 numpy array, computed in
    bounded memory (:func:`coarse_bands`)."""
    rows, _ = coarse_shape(region, factor)
    return next(coarse_bands(source, region, factor, rows))[1]
