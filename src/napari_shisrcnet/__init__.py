"""napari-shisrcnet: super-resolution and classification of low-resolution histopathology.

Research use only; not for diagnosis. The scripting API lives in
:mod:`napari_shisrcnet.api` and is re-exported here (imported on first use, so that
napari can read the plugin manifest without loading torch).
"""

from importlib import import_module

from ._version import __version__

_API = (
    "CancelToken",
    "ModelSpec",
    "Region",
    "SlideJob",
    "SlideJobSettings",
    "classify_tiles",
    "load_model",
    "open_slide",
    "process_slide",
    "super_resolve",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(".api", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
