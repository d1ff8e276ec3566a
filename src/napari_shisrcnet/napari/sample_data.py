"""Sample data that works offline (shipped with this or installed packages, or generated)."""

from __future__ import annotations

import numpy as np

from ..io.synthetic import synthetic_he_tile
from ..samples import CMU_SMALL_REGION, CMU_SMALL_REGION_CREDIT


def make_cmu_sample() -> list[tuple]:
    """The real Aperio H&E slide shipped with the package, in micrometres (CC0)."""
    from .reader import layer_tuple

    data, kwargs, kind = layer_tuple(CMU_SMALL_REGION)
    kwargs["metadata"]["napari_shisrcnet"]["credit"] = CMU_SMALL_REGION_CREDIT
    return [(data, kwargs, kind)]


def make_ihc_sample() -> list[tuple]:
    """scikit-image's immunohistochemistry image (real IHC, 512x512 RGB) as a small pyramid."""
    from skimage import data
    from skimage.transform import rescale

    full = data.immunohistochemistry()
    half = (rescale(full, 0.5, channel_axis=-1, anti_aliasing=True) * 255).round().astype(np.uint8)
    meta = {
        "name": "immunohistochemistry",
        "rgb": True,
        "multiscale": True,
        "contrast_limits": (0, 255),
    }
    return [([full, half], meta, "image")]


def make_synthetic_he_sample(side_px: int = 4096, mpp: float = 0.5) -> list[tuple]:
    """A generated H&E-like 3-level pyramid (tissue islands on glass) at ``mpp`` µm/px."""
    levels = [synthetic_he_tile(0, 0, side_px // 2**k, side_px // 2**k, 2**k) for k in range(3)]
    meta = {
        "name": "synthetic H&E",
        "rgb": True,
        "multiscale": True,
        "contrast_limits": (0, 255),
        "scale": (mpp, mpp),
        "units": ("micrometer", "micrometer"),
    }
    return [(levels, meta, "image")]
