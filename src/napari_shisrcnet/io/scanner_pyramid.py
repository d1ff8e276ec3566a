"""Give a one-level scan a coarser level made the way scanners make theirs.

For developing and testing real-pyramid evaluation (``shisrcnet evaluate-pyramid``) on a
slide that has no second full-resolution level (the bundled CMU-1-Small-Region.svs): level
1 is level 0 box-averaged by ``factor`` and stored as JPEG tiles at ``quality`` (the CMU
scan's own tiles are JPEG Q 30, 240 px); level 0 is stored losslessly, so it stays the
scan's pixels exactly. Never tune on such a level of a user's own slide.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from ..geometry import block_mean


def write_scanner_pyramid(
    level0: np.ndarray,
    path: str | os.PathLike,
    *,
    factor: int = 2,
    quality: int | None = 30,
    tile_px: int = 240,
    mpp: float | None = None,
) -> Path:
    """Write ``level0`` (Y, X, 3 uint8) and its box-averaged, JPEG-tiled level 1 as a
    tiled pyramidal TIFF (level 1 as a SubIFD); ``quality=None`` stores level 1 lossless."""
    path = Path(path)
    coarse = block_mean(level0, factor)
    # Pixels per centimetre; none when the pixel size is unknown (nothing is invented).
    fine_resolution = None if mpp is None else (1e4 / mpp, 1e4 / mpp)
    coarse_resolution = None if mpp is None else (1e4 / (mpp * factor), 1e4 / (mpp * factor))
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            level0,
            subifds=1,
            tile=(tile_px, tile_px),
            photometric="rgb",
            compression="zlib",
            resolution=fine_resolution,
            resolutionunit="CENTIMETER" if mpp else None,
        )
        tif.write(
            coarse,
            subfiletype=1,
            tile=(tile_px, tile_px),
            photometric="rgb",
            compression="zlib" if quality is None else "jpeg",
            compressionargs=None if quality is None else {"level": quality},
            resolution=coarse_resolution,
            resolutionunit="CENTIMETER" if mpp else None,
        )
    return path
