"""napari-shisrcnet: super-resolution and classification of low-resolution histopathology.

Research use only; not for diagnosis.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-shisrcnet")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"
