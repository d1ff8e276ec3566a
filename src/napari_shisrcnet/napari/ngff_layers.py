"""NGFF labels (and a result's tile probabilities) as napari layer data, placed in the world.

Any NGFF 0.4/0.5 label image opens (values, colours, properties from ``image-label``); a
napari-shisrcnet result's ``labels/tile_classes`` gets its class names as features (hover
shows the class) and its ``tile_probabilities`` a hidden probability heatmap on the same
grid. Placement comes from the label image's own coordinate transformations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from ..classes import positive_class_index
from ..geometry import PixelGrid
from ..io.physical import ngff_physical
from ..io.zarr_nodes import RESULT_RECORD_KEY, array_at, attributes, group_at, ngff_attributes
from .layers import clipped_tile_pyramid

TRANSPARENT = (0.0, 0.0, 0.0, 0.0)


def is_label_image(group: zarr.Group) -> bool:
    attrs = ngff_attributes(group)
    return "image-label" in attrs and "multiscales" in attrs


def label_names(group: zarr.Group) -> list[str]:
    """The label images listed under ``group/labels`` (none when there is no such group)."""
    if "labels" not in group:
        return []
    labels = group_at(group, "labels")
    return [str(n) for n in ngff_attributes(labels).get("labels", []) if n in labels]


def _label_levels(group: zarr.Group, multiscale: dict, axes: str) -> list[np.ndarray]:
    """Each level as (Y, X): leading singleton axes (c, z, t of one plane) dropped."""
    keep = tuple(slice(None) if a in "YX" else 0 for a in axes)
    return [np.asarray(array_at(group, d["path"])[keep]) for d in multiscale["datasets"]]


def _colours_and_features(label_info: dict) -> tuple[dict, dict | None]:
    colours: dict = {0: TRANSPARENT, None: TRANSPARENT}
    for entry in label_info.get("colors", []):
        colours[entry["label-value"]] = tuple(v / 255 for v in entry["rgba"])
    properties = {p["label-value"]: p for p in label_info.get("properties", [])}
    if not properties or not all("class" in p for p in properties.values()):
        return colours, None
    values = range(max(properties) + 1)
    names = [properties.get(v, {}).get("class", "background") for v in values]
    return colours, {"index": list(values), "class": names}


def label_layer(group: zarr.Group, name: str) -> tuple:
    """A Labels layer tuple from the NGFF label image ``group``."""
    from napari.utils.colormaps import DirectLabelColormap

    attrs = ngff_attributes(group)
    multiscale = attrs["multiscales"][0]
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in multiscale["axes"]).upper()
    levels = _label_levels(group, multiscale, axes)
    colours, features = _colours_and_features(attrs["image-label"])
    kwargs = {
        "name": name,
        "multiscale": len(levels) > 1,
        "opacity": 0.5,
        "colormap": DirectLabelColormap(color_dict=colours),
        **(ngff_physical(multiscale, axes).grid or PixelGrid()).layer_keywords(),
    }
    if features is not None:
        kwargs["features"] = features
        kwargs["metadata"] = {"napari_shisrcnet": {"class_names": features["class"][1:]}}
    return (levels if len(levels) > 1 else levels[0], kwargs, "labels")


def probability_layer(result: zarr.Group, labels: tuple, name: str) -> tuple | None:
    """The positive class's probability per tile ("malignant", else the last class), hidden,
    on the tile-class labels' grid; None when the result holds no probabilities."""
    if "tile_probabilities" not in result:
        return None
    probabilities = array_at(result, "tile_probabilities")
    class_names = labels[1].get("metadata", {}).get("napari_shisrcnet", {}).get("class_names")
    names = class_names or [f"class {i}" for i in range(probabilities.shape[-1])]
    positive = positive_class_index(names)
    placement = {k: labels[1][k] for k in ("scale", "translate", "units") if k in labels[1]}
    kwargs = {
        "name": f"{name} p({names[positive]})",
        "colormap": "inferno",
        "contrast_limits": (0.0, 1.0),
        "opacity": 0.5,
        "visible": False,
        **placement,
    }
    return (np.asarray(probabilities[..., positive]), kwargs, "image")


def result_label_layers(group: zarr.Group, path: str | Path) -> list[tuple]:
    """Every label image of an OME-Zarr group, and a result's probability heatmap."""
    layers = []
    stem = Path(path).name.removesuffix(".zarr").removesuffix(".ome")
    for label in label_names(group):
        labels = label_layer(group_at(group, f"labels/{label}"), f"{stem} {label}")
        if label != "tile_classes":
            layers.append(labels)
            continue
        heatmap = probability_layer(group, labels, stem)
        tiles = _result_tiles(group)
        layers += [_clipped(t, *tiles) if tiles else t for t in (labels, heatmap) if t]
    return layers


def _result_tiles(group: zarr.Group) -> tuple[int, tuple[int, int]] | None:
    """A result's classification tile size and region shape (read pixels), if recorded."""
    summary = (attributes(group).get(RESULT_RECORD_KEY) or {}).get("summary") or {}
    if "classification_tile_px" not in summary or "region_xywh" not in summary:
        return None
    _, _, width, height = summary["region_xywh"]
    return int(summary["classification_tile_px"]), (int(height), int(width))


def _clipped(layer: tuple, tile_px: int, shape_px: tuple[int, int]) -> tuple:
    """A tile-resolution layer as a pyramid ending at the region's edge (see
    :func:`~napari_shisrcnet.napari.layers.clipped_tile_pyramid`), on the read-pixel grid."""
    data, kwargs, kind = layer
    tiles = np.ascontiguousarray(data[0] if isinstance(data, list) else data)
    pixels = PixelGrid(tuple(kwargs["scale"]), tuple(kwargs["translate"])).coarser(1 / tile_px)
    placed = {**kwargs, "scale": pixels.scale, "translate": pixels.translate, "multiscale": True}
    return (clipped_tile_pyramid(tiles, tile_px, shape_px), placed, kind)
