"""npe2 reader: slides and images as lazy multiscale napari layers in micrometres."""

from __future__ import annotations

from pathlib import Path

from ..geometry import block_mean
from ..io.slides import SlideError, open_slide, slide_suffixes

LAZY_PYRAMID_ABOVE_PX = 2048


def _readable(path: str) -> bool:
    name = path.lower().rstrip("/")
    return name.endswith(slide_suffixes())


def get_reader(path):
    """Return :func:`read_slide` for a path this plugin can open, else None."""
    if isinstance(path, list):
        return read_slides if path and all(_readable(str(p)) for p in path) else None
    return read_slides if _readable(str(path)) else None


def layer_tuple(path) -> tuple:
    """One image layer: every pyramid level, µm scale when known, fixed contrast limits."""
    slide = open_slide(path)
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
            }
        },
    }
    if meta.mpp:
        kwargs.update(scale=(meta.mpp, meta.mpp), units=("micrometer", "micrometer"))
    levels = list(slide.levels)
    # A large single-level image gets lazy /2 levels, so a zoomed-out view stays light.
    while max(levels[-1].shape[:2]) > LAZY_PYRAMID_ABOVE_PX and len(slide.levels) == 1:
        levels.append(block_mean(levels[-1], 2))
    kwargs["multiscale"] = len(levels) > 1
    data = levels if len(levels) > 1 else levels[0]
    return (data, kwargs, "image")


def read_slides(path) -> list[tuple]:
    paths = path if isinstance(path, list) else [path]
    try:
        return [layer_tuple(p) for p in paths]
    except SlideError as error:
        # napari shows reader errors as notifications; keep the message actionable.
        raise SlideError(str(error)) from None
