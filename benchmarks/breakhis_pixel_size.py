"""BreaKHis's pixel size, measured against a slide whose pixel size is known.

    python benchmarks/breakhis_pixel_size.py --data ../shared/data/breakhis \
        > docs/breakhis-pixel-size.json

BreaKHis publishes no µm/px. This measures the size of hematoxylin-stained nuclei in pixels
(the local maxima of the distance transform of the Otsu-thresholded hematoxylin channel:
nucleus half-widths, robust to touching nuclei) in the BreaKHis images and in the bundled
Aperio scan CMU-1-Small-Region.svs (0.499 µm/px, from its header) resampled to a ladder of
known pixel sizes. The measure is not proportional to scale (its thresholds are in pixels),
so it is never divided: each BreaKHis figure is placed on the reference's curve (size vs
µm/px) and read off by interpolation. That two sections' nuclei have similar sizes (here
skin, there breast) is the main uncertainty; the per-class figures show part of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import numpy as np
from scipy import ndimage
from skimage import color, feature, filters, measure, transform

from napari_shisrcnet.data.breakhis import index_dataset
from napari_shisrcnet.data.pairs import load_rgb
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.samples import CMU_SMALL_REGION

TILE_PX = 256
MIN_TISSUE = 0.5  # share of a reference tile darker than the glass
QUANTILES = (75, 90)  # the median sits on the detector's 1.5 px floor at coarse scales
# Up to 1.75: coarser, the detector's pixel floors make the measure flat (not invertible).
REFERENCE_DOWNSAMPLES = (0.5, 0.625, 0.75, 0.875, 1.0, 1.25, 1.5, 1.75)


def nucleus_half_widths(rgb: np.ndarray) -> np.ndarray:
    """Half-widths (px) of hematoxylin blobs: distance-transform maxima inside the mask."""
    hematoxylin = color.rgb2hed(rgb[..., :3])[..., 0]
    hematoxylin = np.minimum(hematoxylin, np.percentile(hematoxylin, 99))  # near-black pixels
    mask = ndimage.binary_fill_holes(hematoxylin > filters.threshold_otsu(hematoxylin))
    distance = ndimage.distance_transform_edt(mask)
    peaks = feature.peak_local_max(
        distance, min_distance=2, threshold_abs=1.5, labels=measure.label(mask)
    )
    return distance[tuple(peaks.T)]


def quantiles(widths: np.ndarray) -> dict[str, float]:
    return {f"p{q}": float(np.percentile(widths, q)) for q in QUANTILES}


def reference_tiles(downsample: float) -> list[np.ndarray]:
    """Tissue tiles of the reference scan resampled by ``downsample`` (area-averaged when
    coarser, cubic when finer: finer than the scan is blurrier than a real finer scan)."""
    image = np.asarray(open_slide(CMU_SMALL_REGION).levels[0])
    if downsample != 1:
        image = transform.rescale(
            image,
            1 / downsample,
            order=3,
            anti_aliasing=downsample > 1,
            channel_axis=-1,
            preserve_range=True,
        )
        image = image.clip(0, 255).round().astype(np.uint8)
    tile = round(TILE_PX / downsample)
    tiles = []
    for y in range(0, image.shape[0] - tile + 1, tile):
        for x in range(0, image.shape[1] - tile + 1, tile):
            patch = image[y : y + tile, x : x + tile]
            if (patch.mean(-1) < 215).mean() > MIN_TISSUE:
                tiles.append(patch)
    return tiles


def size_index(widths: np.ndarray) -> float:
    """One number per set of half-widths: the mean of its quantiles (px)."""
    return float(np.mean([np.percentile(widths, q) for q in QUANTILES]))


def read_off(index: float, curve: list[tuple[float, float]]) -> float | None:
    """µm/px at which the reference's size index equals ``index`` (None: off the curve)."""
    mpps, indices = zip(*sorted(curve), strict=True)
    if any(np.diff(indices) >= 0):
        raise ValueError(f"the reference curve is not falling, cannot be read off: {curve}")
    if not min(indices) <= index <= max(indices):
        return None
    return float(np.interp(index, indices[::-1], mpps[::-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="BreaKHis folder (official layout)")
    args = parser.parse_args(argv)

    reference_mpp = float(open_slide(CMU_SMALL_REGION).metadata.mpp)
    curve = []
    for downsample in REFERENCE_DOWNSAMPLES:
        widths = np.concatenate([nucleus_half_widths(t) for t in reference_tiles(downsample)])
        curve.append((reference_mpp * downsample, size_index(widths)))
    report: dict = {
        "reference": {"file": CMU_SMALL_REGION.name, "mpp": reference_mpp},
        "reference_curve": [{"mpp": round(m, 4), "size_index_px": round(i, 3)} for m, i in curve],
        "breakhis": {},
    }
    by_group: dict[str, list[np.ndarray]] = defaultdict(list)
    for record in index_dataset(args.data):
        widths = nucleus_half_widths(load_rgb(record.path))
        by_group[f"{record.magnification}X"].append(widths)
        by_group[f"{record.magnification}X {record.group}"].append(widths)
        by_group[f"{record.magnification}X {record.subtype}"].append(widths)
    for name, parts in sorted(by_group.items()):
        index = size_index(np.concatenate(parts))
        mpp = read_off(index, curve)
        report["breakhis"][name] = {
            "images": len(parts),
            "size_index_px": round(index, 3),
            "mpp": None if mpp is None else round(mpp, 3),
        }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
