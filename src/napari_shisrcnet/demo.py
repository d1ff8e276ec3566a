"""The main job on built-in defaults: ``shisrcnet demo``.

Needs no data and no display: it takes the real Aperio H&E slide shipped with the package
(``CMU-1-Small-Region.svs``, CC0; see :mod:`napari_shisrcnet.samples`), or ``--input``, or
a generated H&E-like slide (``--synthetic``), classifies its tissue tiles and super-resolves
a region with the default model, and writes OME-Zarr results, a comparison figure (LR /
bicubic / SR), an overlay figure (tile classes with a legend) and a JSON summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from . import api
from ._version import __version__
from .classes import class_colors
from .figures import pyplot, save
from .geometry import Region
from .io.synthetic import write_synthetic_slide
from .io.zarr_nodes import array_at
from .model.bundled import BundledModelMissing
from .samples import CMU_SMALL_REGION
from .settings import SlideJobSettings, resolve, view_of

DEMO_SLIDE_PX = (2048, 2048)
DEMO_MPP = 0.5
DEMO_REGION_PX = 256


def _model(spec: str, device: str) -> tuple[api.TileModel, str]:
    try:
        return api.load_model(spec, device), spec
    except BundledModelMissing as missing:
        # No weights in this installation: still show the pipeline, with bicubic SR only.
        print(f"note: {missing}; the demo falls back to bicubic SR without classification")
        return api.load_model("bicubic", device), "bicubic"


def save_comparison(lr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, scale: int, path: Path):
    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.3))
    lr_up = np.repeat(np.repeat(lr, scale, 0), scale, 1)
    for axis, image, title in zip(
        axes,
        (lr_up, bicubic, sr),
        ("LR (input)", f"bicubic x{scale}", f"SHISRCNet x{scale}"),
        strict=True,
    ):
        axis.imshow(image, interpolation="nearest")
        axis.set_title(title)
        axis.axis("off")
    return save(figure, path, dpi=110)


def save_overlay(overview: np.ndarray, label_map: np.ndarray, names, counts: dict, path: Path):
    """The image with tile classes drawn over it, and a legend with tile counts."""
    from matplotlib.patches import Patch

    plt = pyplot()
    colors = class_colors(names)
    rgba = np.zeros((*label_map.shape, 4))
    for index, rgb in enumerate(colors):
        rgba[label_map == index + 1] = (*(c / 255 for c in rgb), 0.45)
    figure, axis = plt.subplots(figsize=(7, 7.4))
    axis.imshow(overview)
    axis.imshow(rgba, extent=(0, overview.shape[1], overview.shape[0], 0), interpolation="nearest")
    axis.legend(
        handles=[
            Patch(color=(r / 255, g / 255, b / 255), label=f"{n} ({counts[n]} tiles)")
            for n, (r, g, b) in zip(names, colors, strict=True)
        ],
        loc="upper right",
    )
    axis.set_title("tile classes (research use only, not for diagnosis)")
    axis.axis("off")
    return save(figure, path, dpi=110)


def _super_resolve_centre(slide, tile_model, out_dir: Path) -> dict:
    """SR of a central region into OME-Zarr, and the LR / bicubic / SR figure."""
    # A region is in the pixels the job reads: the level at the model's µm/px (the bundled
    # scan's level 0 resampled by 1 / 0.499 for the x2 model), not the level as stored.
    resolved = resolve(SlideJobSettings(classification=False), slide, tile_model, {})
    pixels: Any = view_of(slide, resolved).pixels  # numpy, dask or a resampled level
    height, width = pixels.shape[:2]
    side = min(DEMO_REGION_PX, height, width)
    region = Region((height - side) // 2, (width - side) // 2, side, side)
    lr = np.asarray(pixels[region.y : region.y + side, region.x : region.x + side])
    sr_result = api.process_slide(
        slide.metadata.path,
        out_dir / "super-resolution",
        tile_model,
        region=region,
        classification=False,
        overwrite=True,
    )
    sr_level0 = array_at(zarr.open_group(sr_result.zarr_path, mode="r"), "0")
    sr = np.asarray(sr_level0[:]).transpose(1, 2, 0)
    bicubic = api.super_resolve(lr, api.load_model("bicubic", "cpu", tile_model.scale))
    comparison = save_comparison(lr, bicubic, sr, tile_model.scale, out_dir / "comparison.png")
    return {
        "scale": tile_model.scale,
        "sr_region_xywh": [region.x, region.y, region.width, region.height],
        "sr_region_level": resolved.level,
        "sr_region_mpp": resolved.target_mpp,  # None: the level as stored
        "sr_ome_zarr": str(sr_result.zarr_path),
        "comparison_png": str(comparison),
    }


def _classify_slide(slide, tile_model, out_dir: Path) -> dict:
    """Tile classes of the whole slide (OME-Zarr, CSV, GeoJSON) and the overlay figure."""
    classified = api.process_slide(
        slide.metadata.path,
        out_dir / "classification",
        tile_model,
        super_resolution=False,
        geojson=True,
        overwrite=True,
    )
    group = zarr.open_group(classified.zarr_path, mode="r")
    label_map = np.asarray(array_at(group, "labels/tile_classes/0")[0])
    counts = classified.summary["tiles_per_class"]
    step = max(1, round(max(slide.shape) / 1024))
    overview = slide.levels[0][::step, ::step].compute()
    overlay = save_overlay(
        overview, label_map, tile_model.class_names, counts, out_dir / "overlay.png"
    )
    return {
        "classification_ome_zarr": str(classified.zarr_path),
        "tiles_csv": str(classified.csv_path),
        "geojson": str(classified.geojson_path),
        "overlay_png": str(overlay),
        "tiles_per_class": counts,
        "area_mm2_per_class": classified.summary["area_mm2_per_class"],
    }


def run_demo(
    out_dir: str | Path,
    input_path: str | Path | None = None,
    model: str = "default",
    device: str = "auto",
    synthetic: bool = False,
) -> dict:
    """Run the demo into ``out_dir`` and return its summary (also written as summary.json).

    ``input_path`` defaults to the bundled real slide; ``synthetic`` generates one instead.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if synthetic:
        input_path = write_synthetic_slide(out_dir / "sample-he.tif", DEMO_SLIDE_PX, mpp=DEMO_MPP)
    elif input_path is None:
        input_path = CMU_SMALL_REGION
    tile_model, used = _model(model, device)
    summary: dict[str, Any] = {
        "napari_shisrcnet": __version__,
        "input": str(input_path),
        "model": used,
    }
    with api.open_slide(input_path) as slide:
        summary.update(_super_resolve_centre(slide, tile_model, out_dir))
        if tile_model.can_classify:
            summary.update(_classify_slide(slide, tile_model, out_dir))
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
