"""Background detection: which tiles hold tissue.

Saturation (HSV S) at about 8 px per tile (a stored pyramid level, or block means of one
made in bounded memory when the slide stores none that coarse), an Otsu threshold kept
inside a plausible band (so an all-tissue image is not split in two), then morphological
clean-up. A tile is tissue when enough of its area is.
"""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_otsu
from skimage.morphology import closing, disk, remove_small_holes, remove_small_objects

from ..geometry import Region
from .coarse import coarse_image
from .tiling import TileGrid, read_window

#: Otsu on saturation is kept in this band: glass is below ~0.03; pale stroma is ~0.08-0.1.
SATURATION_THRESHOLD_BAND = (0.03, 0.07)
MIN_TISSUE_FRACTION = 0.2
#: Tissue is found at about this many pixels per tile side (at least this, under twice it).
TISSUE_PX_PER_TILE = 8


def saturation(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    return np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)


def tissue_pixels(rgb: np.ndarray) -> np.ndarray:
    """Boolean tissue mask of an RGB uint8 image."""
    sat = saturation(rgb)
    low, high = SATURATION_THRESHOLD_BAND
    threshold = np.clip(threshold_otsu(sat), low, high) if np.ptp(sat) > 0 else low
    mask = closing(sat > threshold, disk(2))
    min_area = max(4, mask.size // 5000)
    mask = remove_small_objects(mask, max_size=min_area)
    return remove_small_holes(mask, max_size=min_area)


def _coarse_level(levels, level: int, tile_px: int) -> int:
    """The coarsest pyramid level that still gives about 8 px per tile side."""
    base = levels[level].shape[1]
    best = level
    for candidate in range(level, len(levels)):
        if tile_px * levels[candidate].shape[1] / base >= TISSUE_PX_PER_TILE:
            best = candidate
    return best


def tissue_fractions(levels, level: int, grid: TileGrid) -> np.ndarray:
    """Fraction of tissue in each tile core, shape ``grid.shape``, at about 8 px per tile.

    From the coarsest stored level with at least 8 px per tile; where even that has 16 or
    more (a single-level slide, a sparse pyramid), from its block means by an integer
    factor, made in bounded memory (:mod:`.coarse`), never from a whole-level array.
    """
    coarse = _coarse_level(levels, level, grid.tile_px)
    factor = levels[level].shape[1] / levels[coarse].shape[1]
    reduction = max(1, int(grid.tile_px / factor) // TISSUE_PX_PER_TILE)
    region = grid.region
    window = (
        int(region.y / factor),
        max(int(np.ceil((region.y + region.height) / factor)), int(region.y / factor) + 1),
        int(region.x / factor),
        max(int(np.ceil((region.x + region.width) / factor)), int(region.x / factor) + 1),
    )
    if reduction == 1:  # the stored level as it is
        rgb = read_window(levels[coarse], window)
    else:
        y0, y1, x0, x1 = window
        inside = Region(y0, x0, y1 - y0, x1 - x0).clipped_to(levels[coarse].shape[:2])
        rgb = coarse_image(levels[coarse], inside, reduction)
    mask = tissue_pixels(rgb).astype(np.float32)
    fractions = np.zeros(grid.shape, np.float32)
    origins = (window[0], window[0], window[2], window[2])
    for tile in grid.tiles():
        # level px -> coarse level px -> mask px (the window's corner is mask pixel 0)
        y0, y1, x0, x1 = (
            round((round(v / factor) - origin) / reduction)
            for v, origin in zip(tile.core, origins, strict=True)
        )
        y1, x1 = max(y1, y0 + 1), max(x1, x0 + 1)
        fractions[tile.row, tile.column] = (
            mask[y0:y1, x0:x1].mean() if mask[y0:y1, x0:x1].size else 0
        )
    return fractions
