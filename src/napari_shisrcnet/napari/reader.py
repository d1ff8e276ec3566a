"""npe2 reader: slides, images and results as lazy napari layers, where they belong.

A slide or image becomes one multiscale RGB layer placed by its level-0 pixel grid (µm
where the file gives a pixel size, its position where it records one). An OME-Zarr result
also brings its NGFF labels (class names, colours) and its tile-probability heatmap; a
label image's own folder (``result.ome.zarr/labels/tile_classes``) or a group holding only
labels (File > Save of a labels layer) opens as Labels.
"""

from __future__ import annotations

from pathlib import Path

import zarr

from ..geometry import block_mean
from ..io.slides import Slide, SlideError, open_slide, slide_suffixes
from .ngff_layers import is_label_image, label_layer, label_names, result_label_layers

LAZY_PYRAMID_ABOVE_PX = 2048
#: Label images inside an OME-Zarr (napari.yaml lists this pattern with the suffixes).
LABEL_IMAGE_PATTERN = "*/labels/*"


def _readable(path: str) -> bool:
    name = path.lower().rstrip("/")
    return name.endswith(slide_suffixes()) or "/labels/" in name.replace("\\", "/")


def get_reader(path):
    """Return :func:`read_slides` for a path this plugin can open, else None."""
    if isinstance(path, list):
        return read_slides if path and all(_readable(str(p)) for p in path) else None
    return read_slides if _readable(str(path)) else None


def image_layer(slide: Slide, path) -> tuple:
    """One image layer: every pyramid level, placed by the slide's grid, fixed contrast."""
    meta = slide.metadata
    kwargs = {
        "name": Path(path).name,
        "rgb": True,
        "contrast_limits": (0, 255),  # set, so napari computes nothing over a gigapixel image
        "metadata": {
            "napari_shisrcnet": {
                "path": str(path),
                "mpp": meta.mpp,
                "objective_power": meta.objective_power,
                # Levels after these are the reader's own, for display (see below).
                "stored_levels": len(slide.levels),
            }
        },
        **meta.grid.layer_keywords(),
    }
    levels = list(slide.levels)
    # A large single-level image gets lazy /2 levels, so a zoomed-out view stays light.
    while max(levels[-1].shape[:2]) > LAZY_PYRAMID_ABOVE_PX and len(slide.levels) == 1:
        levels.append(block_mean(levels[-1], 2))
    kwargs["multiscale"] = len(levels) > 1
    return (levels if len(levels) > 1 else levels[0], kwargs, "image")


def layer_tuple(path) -> tuple:
    """The image layer of the slide or image at ``path``."""
    return image_layer(open_slide(path), path)


def _zarr_group(path) -> zarr.Group | None:
    try:
        return zarr.open_group(path, mode="r")
    except Exception:
        return None


def layer_tuples(path) -> list[tuple]:
    """Every layer the file or folder at ``path`` holds."""
    group = _zarr_group(path) if Path(path).is_dir() else None
    if group is not None and is_label_image(group):
        return [label_layer(group, Path(path).name)]
    if group is not None and label_names(group) and "multiscales" not in group.attrs:
        return result_label_layers(group, path)  # labels saved on their own
    layers = [layer_tuple(path)]
    return layers + (result_label_layers(group, path) if group is not None else [])


def read_slides(path) -> list[tuple]:
    paths = path if isinstance(path, list) else [path]
    try:
        return [layer for p in paths for layer in layer_tuples(p)]
    except SlideError as error:
        # napari shows reader errors as notifications; keep the message actionable.
        raise SlideError(str(error)) from None
