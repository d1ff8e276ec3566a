"""The installed version, in a leaf module every other module may import."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-shisrcnet")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"
