"""Super-resolution judged on a real slide's own pyramid: level L+1 in, level L as truth.

A slide's coarser level was made by its scanner (or its pyramid builder) from the finer
one: area averaging and JPEG, not antialiased bicubic. Super-resolving tissue regions of
level L+1 and comparing them with the same regions of level L measures SR on the
degradation users actually have, against bicubic of the same input.

Alignment, from the file's downsample factors with the pixel-centre convention: LR pixel
``i`` of level L+1 covers level-L pixels ``[i r, (i + 1) r)``, with ``r`` the levels'
ratio, and SR pixel ``k`` (align_corners=False, as the network's and bicubic's
upsampling) sits at the centre of level-L pixel ``k`` when ``r`` equals the scale. When
the levels are a multiple ``m`` of the scale apart (Aperio: 4x apart, an x2 model), the
reference is level L block-averaged by ``m`` (area, like the scanner), stated in the
report. Tested on a pyramid whose coarse level is a known box average of the fine one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine.tiling import TileGrid
from ..engine.tissue import tissue_fractions
from ..errors import OptionError
from ..geometry import Region, block_mean
from ..model import SHISRCNet, SRMFENet, bicubic_upsample
from .metrics import image_quality, patient_bootstrap

MIN_TISSUE = 0.5  # share of a candidate region that must be tissue
RATIO_TOLERANCE = 0.02  # real level sizes are floored/ceiled: 2967 / 1483 = 2.0007


@dataclass(frozen=True)
class PyramidRegion:
    """One LR region (level L+1 px) and its reference (level L, block-averaged by m)."""

    y: int
    x: int
    lr: np.ndarray
    reference: np.ndarray


def reference_block(ratio: float, scale: int, level: int) -> int:
    """m: level L is block-averaged by m so that it is ``scale`` x level L+1."""
    multiple = ratio / scale
    block = round(multiple)
    if block < 1 or abs(multiple - block) > RATIO_TOLERANCE * multiple:
        raise OptionError(
            f"level {level + 1} is {ratio:.3f}x coarser than level {level}; an x{scale} "
            f"model needs levels {scale}x apart or a multiple of it",
            "level",
        )
    return block


def tissue_region_origins(
    levels, lr_level: int, region_px: int, count: int, seed: int
) -> list[tuple[int, int]]:
    """Up to ``count`` seeded, non-overlapping region origins (LR px) that are tissue."""
    height, width = levels[lr_level].shape[:2]
    rows, columns = height // region_px, width // region_px
    if rows * columns == 0:
        raise OptionError(
            f"level {lr_level} is {height}x{width} px: smaller than one {region_px} px region",
            "region_px",
        )
    grid = TileGrid(Region(0, 0, rows * region_px, columns * region_px), region_px)
    fractions = tissue_fractions(levels, lr_level, grid)
    candidates = np.argwhere(fractions >= MIN_TISSUE)
    if not len(candidates):
        raise OptionError(f"no {region_px} px region of level {lr_level} is tissue", "level")
    chosen = np.random.default_rng(seed).permutation(len(candidates))[:count]
    return sorted((int(r) * region_px, int(c) * region_px) for r, c in candidates[chosen])


def read_regions(
    levels, level: int, scale: int, origins: list[tuple[int, int]], region_px: int, block: int
) -> list[PyramidRegion]:
    ratio = scale * block
    regions = []
    for y, x in origins:
        lr = np.asarray(levels[level + 1][y : y + region_px, x : x + region_px])
        fine = levels[level][
            y * ratio : (y + region_px) * ratio, x * ratio : (x + region_px) * ratio
        ]
        fine = np.asarray(fine)
        if fine.shape[:2] != (region_px * ratio, region_px * ratio):
            continue  # the finer level ends first (its size was rounded down)
        reference = block_mean(fine, block) if block > 1 else fine
        regions.append(PyramidRegion(y, x, lr, np.asarray(reference)))
    return regions


def slide_regions(
    slide, level: int, scale: int, region_px: int, regions: int, seed: int
) -> tuple[float, int, list[PyramidRegion]]:
    """(level ratio, reference block mean, the regions) of an open ``slide``: ``regions``
    tissue regions of ``region_px`` LR px of level ``level + 1``, with level ``level``."""
    levels, downsamples = slide.levels, slide.metadata.level_downsamples
    if not 0 <= level < len(levels) - 1:
        raise ValueError(
            f"{slide.metadata.path}: has {len(levels)} pyramid level(s); level must be "
            f"0-{len(levels) - 2} so that level + 1 exists (--level)"
        )
    ratio = downsamples[level + 1] / downsamples[level]
    block = reference_block(ratio, scale, level)
    origins = tissue_region_origins(levels, level + 1, region_px, regions, seed)
    return ratio, block, read_regions(levels, level, scale, origins, region_px, block)


@torch.inference_mode()
def super_resolve_region(model, lr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(SR, bicubic) of an (H, W, 3) uint8 region, as float RGB in [0, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1).float()[None] / 255
    bicubic = bicubic_upsample(tensor, scale)
    if isinstance(model, SHISRCNet):
        model = model.sr_module
    sr = model(tensor) if isinstance(model, SRMFENet) else bicubic

    def as_image(t):
        return t[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)

    return as_image(sr), as_image(bicubic)


def evaluate_regions(model, regions: list[PyramidRegion], scale: int) -> list[dict]:
    """Per region: RGB and Y PSNR/SSIM of SR and of bicubic against the reference (a
    border of ``scale`` px cropped), plus the images for figures under ``_images``."""
    rows = []
    model = None if model is None else model.eval()  # None: bicubic
    for region in regions:
        sr, bicubic = super_resolve_region(model, region.lr, scale)
        reference = region.reference.astype(np.float64) / 255
        quality = image_quality(sr, reference, scale)
        baseline = image_quality(bicubic, reference, scale)
        row: dict[str, Any] = {"y": region.y, "x": region.x, **quality}
        row.update({f"{key}_bicubic": value for key, value in baseline.items()})
        row["_images"] = (region.lr, bicubic, sr, reference)
        rows.append(row)
    return rows


def summarise(rows: list[dict], seed: int = 0) -> dict:
    """Means over regions, the PSNR gain and its 95 % bootstrap interval over regions."""
    keys = [k for k in rows[0] if not k.startswith("_") and k not in ("y", "x")]
    summary: dict[str, Any] = {key: float(np.mean([row[key] for row in rows])) for key in keys}
    gains = np.array([row["psnr"] - row["psnr_bicubic"] for row in rows])
    summary["psnr_gain"] = float(gains.mean())
    summary["psnr_y_gain"] = float(np.mean([r["psnr_y"] - r["psnr_y_bicubic"] for r in rows]))
    # Each region is its own group: a bootstrap over regions (train.metrics, seeded).
    regions = [f"{row['y']},{row['x']}" for row in rows]
    summary["psnr_gain_ci95"] = patient_bootstrap(regions, psnr_gain={"gain": gains}, seed=seed)[
        "gain"
    ]
    summary["regions_better_than_bicubic"] = int((gains > 0).sum())
    return summary
