"""Sample data that works offline (images that installed packages ship)."""

from __future__ import annotations


def make_ihc_sample() -> list[tuple]:
    """scikit-image's immunohistochemistry image (real IHC, 512x512 RGB)."""
    from skimage import data

    return [(data.immunohistochemistry(), {"name": "immunohistochemistry", "rgb": True}, "image")]
