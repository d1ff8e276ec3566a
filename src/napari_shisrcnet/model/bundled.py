"""Weights shipped inside the package (see docs/model-card.md)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: Name accepted by ``load_model`` / ``--model`` -> file in ``napari_shisrcnet/weights``.
#: "default" is the x2 model, or the bundled model of the scale asked for.
BUNDLED_WEIGHTS = {
    "default": "shisrcnet-x2-binary.safetensors",
    "default-x2": "shisrcnet-x2-binary.safetensors",
    "default-x4": "shisrcnet-x4-binary.safetensors",
}


class BundledModelMissing(LookupError):
    """The requested bundled model is not part of this installation."""


def bundled_weights_path(name: str) -> Path:
    if name not in BUNDLED_WEIGHTS:
        raise BundledModelMissing(
            f"unknown bundled model '{name}' (known: {', '.join(BUNDLED_WEIGHTS)})"
        )
    path = Path(str(resources.files("napari_shisrcnet") / "weights" / BUNDLED_WEIGHTS[name]))
    if not path.is_file():
        raise BundledModelMissing(
            f"this installation has no bundled '{name}' model ({path.name}); pass a checkpoint "
            "file or 'bicubic'"
        )
    return path


def installed_models() -> dict[str, Path]:
    """The bundled models this installation has, by name (``default-xN``)."""
    found = {}
    for name in BUNDLED_WEIGHTS:
        if name != "default":
            try:
                found[name] = bundled_weights_path(name)
            except BundledModelMissing:
                continue
    return found


def bundled_name(spec, scale: int | None = None):
    """``spec`` as given, except that ``"default"`` with a ``scale`` names the bundled model
    of that scale (``default-x4``) where this installation has it."""
    scaled = f"default-x{scale}"
    if str(spec) == "default" and scale is not None and scaled in installed_models():
        return scaled
    return spec


def checkpoint_path(spec: str | os.PathLike, scale: int | None = None) -> Path:
    """A checkpoint file: a bundled model's by name (``"default"`` with a ``scale``: see
    ``bundled_name``), else ``spec`` itself."""
    name = str(bundled_name(spec, scale))
    return bundled_weights_path(name) if name in BUNDLED_WEIGHTS else Path(spec)
