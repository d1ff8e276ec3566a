"""npe2 writers: image layers to OME-Zarr (NGFF 0.4), labels layers to NGFF labels."""

from __future__ import annotations

import numpy as np
import zarr
from ome_zarr.format import FormatV04
from ome_zarr.writer import write_image, write_labels

MIN_LEVEL_SIDE_PX = 256


def _level0(data) -> np.ndarray:
    return np.asarray(data[0] if isinstance(data, list) else data)


def _zarr_path(path: str) -> str:
    return path if str(path).endswith(".zarr") else f"{path}.ome.zarr"


def _physical(meta: dict) -> dict:
    """ome-zarr-py keyword arguments for the layer's scale and units."""
    scale = list(meta.get("scale", (1.0, 1.0)))[-2:]
    units = meta.get("units") or ()
    unit = str(units[-1]) if units else None
    keywords = {"scale": {"y": float(scale[0]), "x": float(scale[1])}}
    if unit and unit not in ("pixel", "None"):
        keywords["axes_units"] = {"y": unit, "x": unit}
    return keywords


def _shift_translation(group: zarr.Group, meta: dict) -> None:
    """Add the layer's translate to every level (ome-zarr-py writes only the level offsets)."""
    translate = [float(t) for t in list(meta.get("translate", (0.0, 0.0)))[-2:]]
    if not any(translate):
        return
    multiscales = group.attrs["multiscales"]
    for dataset in multiscales[0]["datasets"]:
        for transform in dataset["coordinateTransformations"]:
            if transform["type"] == "translation":
                values = transform["translation"]
                transform["translation"] = values[:-2] + [
                    v + t for v, t in zip(values[-2:], translate, strict=True)
                ]
    group.attrs["multiscales"] = multiscales


def write_image_layer(path: str, data, meta: dict) -> list[str]:
    """An RGB or greyscale image layer (level 0, with a /2 pyramid) as OME-Zarr."""
    pixels = _level0(data)
    axes = ["y", "x"]
    if meta.get("rgb") or (pixels.ndim == 3 and pixels.shape[-1] in (3, 4)):
        pixels, axes = np.moveaxis(pixels[..., :3], -1, 0), ["c", "y", "x"]
    path = _zarr_path(path)
    group = zarr.open_group(path, mode="w", zarr_format=2)
    levels = max(1, int(np.log2(max(pixels.shape[-2:]) / MIN_LEVEL_SIDE_PX)) + 1)
    write_image(
        pixels,
        group,
        scale_factors=[2**k for k in range(1, levels)],
        fmt=FormatV04(),
        axes=axes,
        name=meta.get("name", "image"),
        **_physical(meta),
    )
    _shift_translation(group, meta)
    return [path]


def write_labels_layer(path: str, data, meta: dict) -> list[str]:
    """A labels layer as NGFF labels ``labels/<name>`` of an OME-Zarr group."""
    labels = _level0(data)
    path = _zarr_path(path)
    group = zarr.open_group(path, mode="w", zarr_format=2)
    name = str(meta.get("name", "labels")).replace("/", "_")
    write_labels(
        labels,
        group,
        name=name,
        scale_factors=[2],
        fmt=FormatV04(),
        axes=["y", "x"],
        **_physical(meta),
    )
    _shift_translation(group["labels"][name], meta)
    return [path]
