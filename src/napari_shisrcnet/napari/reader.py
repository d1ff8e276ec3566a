"""npe2 reader: slides and images as lazy multiscale napari layers in micrometres."""

from __future__ import annotations

from pathlib import Path

from ..io.slides import PLAIN_IMAGE_SUFFIXES, TIFF_SUFFIXES, SlideError, open_slide

LAZY_PYRAMID_ABOVE_PX = 2048


def _readable(path: str) -> bool:
    name = path.lower().rstrip("/")
    return name.endswith(TIFF_SUFFIXES + PLAIN_IMAGE_SUFFIXES + (".zarr",))


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
        levels.append(_half(levels[-1]))
    kwargs["multiscale"] = len(levels) > 1
    data = levels if len(levels) > 1 else levels[0]
    return (data, kwargs, "image")


def _half(level):
    import dask.array as da
    import numpy as np

    height, width = level.shape[:2]
    padded = da.pad(level, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return (da.coarsen(np.mean, padded.astype(np.float32), {0: 2, 1: 2}) + 0.5).astype(np.uint8)


def read_slides(path) -> list[tuple]:
    paths = path if isinstance(path, list) else [path]
    try:
        return [layer_tuple(p) for p in paths]
    except SlideError as error:
        # napari shows reader errors as notifications; keep the message actionable.
        raise SlideError(str(error)) from None
