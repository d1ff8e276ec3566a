"""Procedural H&E-like slides of any size, for sample data, tests and benchmarks.

The picture is a function of position (smooth tissue islands, eosin-pink stroma,
hematoxylin-purple nuclei on a near-white background), so any tile of any pyramid
level can be generated on its own: a 40,000 px slide is written tile by tile in
bounded memory. It looks like tissue to the background detector, nothing more; it
is not a substitute for real slides when judging a model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

BACKGROUND_RGB = np.array([243, 241, 245], np.float32)
EOSIN_RGB = np.array([226, 150, 190], np.float32)
HEMATOXYLIN_RGB = np.array([110, 60, 150], np.float32)


def _field(y: np.ndarray, x: np.ndarray, size_px: float, seed: int, waves: int) -> np.ndarray:
    """A smooth random field in [-1, 1] with features about ``size_px`` across.

    ``y`` is a column and ``x`` a row of coordinates; each plane wave is separable
    (sin(a + b) = sin a cos b + cos a sin b), so a tile costs outer products, not trig.
    """
    rng = np.random.default_rng(seed)
    total = np.zeros((y.shape[0], x.shape[1]), np.float32)
    for _ in range(waves):
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        frequency = 2 * np.pi / (size_px * rng.uniform(0.6, 1.4))
        along_y = frequency * np.sin(angle) * y + phase
        along_x = frequency * np.cos(angle) * x
        total += np.sin(along_y) * np.cos(along_x) + np.cos(along_y) * np.sin(along_x)
    return total / np.sqrt(waves / 2)


def synthetic_he_tile(
    y0: float, x0: float, height: int, width: int, step: float = 1.0, seed: int = 0
) -> np.ndarray:
    """RGB uint8 tile whose pixel (i, j) shows slide position (y0 + i*step, x0 + j*step)."""
    y = (y0 + np.arange(height, dtype=np.float32) * step)[:, None]
    x = (x0 + np.arange(width, dtype=np.float32) * step)[None, :]
    tissue = np.clip(_field(y, x, 3000, seed, 6) * 2.0 + 0.5, 0, 1)[..., None]
    nuclei = (_field(y, x, 14, seed + 1, 8) > 1.2).astype(np.float32)[..., None]
    stroma = 0.75 + 0.25 * _field(y, x, 60, seed + 2, 4)[..., None]
    colour = EOSIN_RGB * stroma + (1 - stroma) * BACKGROUND_RGB
    colour = colour * (1 - nuclei) + HEMATOXYLIN_RGB * nuclei
    rgb = BACKGROUND_RGB * (1 - tissue) + colour * tissue
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_synthetic_slide(
    path: str | os.PathLike,
    size_px: tuple[int, int],
    *,
    mpp: float = 0.5,
    tile_px: int = 256,
    n_levels: int | None = None,
    seed: int = 0,
    compression: str | None = "jpeg",
    tissue_step: float = 1.0,
) -> Path:
    """Write a tiled pyramidal TIFF (levels /2 as SubIFDs) with resolution tags for ``mpp``.

    ``tissue_step``: tissue units per level-0 pixel; the same tissue at twice the
    resolution is ``tissue_step=0.5`` at half the ``mpp`` and twice the ``size_px``."""
    height, width = size_px
    if n_levels is None:
        n_levels = 1
        while max(height, width) >> n_levels >= 1024:
            n_levels += 1
    path = Path(path)
    resolution = (1e4 / mpp, 1e4 / mpp)  # pixels per centimetre

    def tiles(level: int) -> Iterator[np.ndarray]:
        step = 2**level
        h, w = -(-height // step), -(-width // step)
        for ty in range(0, h, tile_px):
            for tx in range(0, w, tile_px):
                th, tw = min(tile_px, h - ty), min(tile_px, w - tx)
                unit = step * tissue_step
                yield synthetic_he_tile(ty * unit, tx * unit, th, tw, unit, seed)

    options: dict[str, Any] = dict(
        tile=(tile_px, tile_px),
        dtype="uint8",
        photometric="rgb",
        compression=compression,
        resolutionunit="CENTIMETER",
    )
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for level in range(n_levels):
            step = 2**level
            shape = (-(-height // step), -(-width // step), 3)
            level_resolution = (resolution[0] / step, resolution[1] / step)
            if level == 0:
                tif.write(
                    tiles(0), shape=shape, subifds=n_levels - 1, resolution=resolution, **options
                )
            else:
                tif.write(
                    tiles(level), shape=shape, subfiletype=1, resolution=level_resolution, **options
                )
    return path
