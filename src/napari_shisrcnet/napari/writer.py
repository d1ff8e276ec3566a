"""npe2 writers: image layers to OME-Zarr (NGFF 0.4), labels layers to NGFF labels.

The metadata comes from :mod:`napari_shisrcnet.results.ngff`, the writer the engine's
results use, so a saved layer reopens where it was (its scale, translate and units).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import zarr

from ..geometry import PixelGrid, block_mean
from ..io.zarr_nodes import group_at
from ..results import ngff

MIN_LEVEL_SIDE_PX = 256


def _levels(data) -> list | None:
    """The levels of multiscale layer data (a list, or napari's MultiScaleData), else None."""
    return list(data) if isinstance(data, Sequence) else None


def _level0(data) -> np.ndarray:
    levels = _levels(data)
    return np.asarray(levels[0] if levels else data)


def _zarr_path(path: str) -> str:
    return path if str(path).endswith(".zarr") else f"{path}.ome.zarr"


def _grid(meta: dict) -> PixelGrid:
    """Where the layer's pixels lie: its scale, translate and (spatial) units."""
    scale = [float(s) for s in list(meta.get("scale", (1.0, 1.0)))[-2:]]
    translate = [float(t) for t in list(meta.get("translate", (0.0, 0.0)))[-2:]]
    units = meta.get("units") or ()
    unit = str(units[-1]) if units else None
    if unit in ("pixel", "None"):
        unit = None
    return PixelGrid(
        (scale[0], scale[1]), (translate[0], translate[1]), None if unit is None else (unit, unit)
    )


def _write_levels(group: zarr.Group, pixels: np.ndarray, n_levels: int, average: bool) -> None:
    """Level k is level 0 reduced 2**k times: block means of uint8 images (``average``),
    else every other pixel (labels keep their values)."""
    yx_axes = (pixels.ndim - 2, pixels.ndim - 1)
    for level in range(n_levels):
        if level:
            pixels = block_mean(pixels, 2, yx_axes) if average else pixels[..., ::2, ::2]
        group.create_array(str(level), data=np.ascontiguousarray(pixels), overwrite=True)


def write_image_layer(path: str, data, meta: dict) -> list[str]:
    """An RGB or greyscale image layer (level 0, with a /2 pyramid) as OME-Zarr."""
    pixels = _level0(data)
    rgb = bool(meta.get("rgb")) or (pixels.ndim == 3 and pixels.shape[-1] in (3, 4))
    if rgb:
        pixels = np.moveaxis(pixels[..., :3], -1, 0)
    path = _zarr_path(path)
    group = zarr.open_group(path, mode="w", zarr_format=2)
    n_levels = max(1, int(np.log2(max(pixels.shape[-2:]) / MIN_LEVEL_SIDE_PX)) + 1)
    _write_levels(group, pixels, n_levels, average=pixels.dtype == np.uint8)
    name = str(meta.get("name", "image"))
    ngff.write_image_metadata(group, _grid(meta), n_levels, name, channels=rgb, rgb=rgb)
    return [path]


def write_labels_layer(path: str, data, meta: dict) -> list[str]:
    """A labels layer as NGFF labels ``labels/<name>`` of an OME-Zarr group.

    A tile-class overlay (its level 0 is a lazy per-pixel view of one value per tile) is
    saved as its tile map, on the tiles' grid: never a full-resolution array."""
    grid = _grid(meta)
    tile_px = (meta.get("metadata") or {}).get("napari_shisrcnet", {}).get("tile_px")
    levels = _levels(data)
    if tile_px and levels:
        labels, grid = np.asarray(levels[-1]), grid.coarser(tile_px)
    else:
        labels = _level0(data)
    path = _zarr_path(path)
    group = zarr.open_group(path, mode="w", zarr_format=2)
    name = str(meta.get("name", "labels")).replace("/", "_")
    label_group = group.require_group("labels").require_group(name)
    _write_levels(label_group, labels, 2, average=False)
    ngff.write_labels_metadata(group_at(group, "labels"), name, grid, 2)
    return [path]
