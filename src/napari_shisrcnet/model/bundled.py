"""Weights shipped inside the package (see docs/model-card.md)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: Name accepted by ``load_model`` / ``--model`` -> file in ``napari_shisrcnet/weights``.
BUNDLED_WEIGHTS = {"default": "shisrcnet-x2-binary.safetensors"}


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


def checkpoint_path(spec: str | os.PathLike) -> Path:
    """A checkpoint file: a bundled model's by name (``"default"``), else ``spec`` itself."""
    return bundled_weights_path(str(spec)) if str(spec) in BUNDLED_WEIGHTS else Path(spec)
