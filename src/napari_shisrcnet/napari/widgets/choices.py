"""What the job widgets offer to choose from: models, devices, extents (no widgets here)."""

from __future__ import annotations

import napari
import numpy as np

EXTENTS = ("field of view", "drawn rectangle", "whole level")
CHECKPOINT_CHOICE = "checkpoint file…"


def model_choices() -> list[str]:
    """The bundled model (when installed), bicubic, and a checkpoint file."""
    from ...model.bundled import BundledModelMissing, bundled_weights_path

    choices = []
    try:
        bundled_weights_path("default")
        choices.append("default")
    except BundledModelMissing:
        pass
    return [*choices, "bicubic", CHECKPOINT_CHOICE]


def device_choices() -> list[tuple[str, str]]:
    """(label, device) pairs: each CUDA GPU with its memory, Apple's GPU, the CPU."""
    import torch

    choices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            choices.append(
                (f"{props.name} ({props.total_memory / 2**30:.0f} GiB)", f"cuda:{index}")
            )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        choices.append(("Apple GPU (MPS)", "mps"))
    choices.append(("CPU", "cpu"))
    return choices


def field_of_view(viewer: napari.viewer.Viewer) -> tuple[float, float, float, float]:
    """World-coordinate (y0, y1, x0, x1) of what the canvas shows."""
    center_y, center_x = viewer.camera.center[-2:]
    height, width = viewer.canvas.size
    half_h, half_w = height / (2 * viewer.camera.zoom), width / (2 * viewer.camera.zoom)
    return (center_y - half_h, center_y + half_h, center_x - half_w, center_x + half_w)


def drawn_rectangle(viewer: napari.viewer.Viewer) -> tuple[float, float, float, float]:
    """World (y0, y1, x0, x1) of the last shape drawn in the top-most Shapes layer."""
    shapes = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Shapes)]
    if not shapes or not len(shapes[-1].data):
        raise ValueError("draw a rectangle in a Shapes layer first (or choose another extent)")
    layer = shapes[-1]
    corners = np.asarray(layer.data[-1])[:, -2:] * layer.scale[-2:] + layer.translate[-2:]
    (y0, x0), (y1, x1) = corners.min(axis=0), corners.max(axis=0)
    return (y0, y1, x0, x1)
