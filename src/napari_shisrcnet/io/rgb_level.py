"""One stored pyramid level seen as (Y, X, 3) uint8, converted window by window.

Slicing an :class:`RGBLevel` reads only the pixels asked for (the source, a zarr array
over the file or a numpy array, decodes the chunks they touch) and converts them:
axes to YX(S), alpha dropped, grey expanded, 16-bit and float scaled to uint8. The
engine reads its tiles through it directly, because a dask graph per tile costs more
than decoding the tile (4.1 ms per 320 px window, benchmarks/read_windows.py); the dask
level that napari and scripts see wraps the same object, so both read the same pixels.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dask.array as da
import numpy as np
from dask.base import tokenize

CHANNEL_AXES = "SC"  # tifffile calls colour samples S, OME calls channels C


class SlideError(ValueError):
    """A file that cannot be opened as a slide; the message names the file and the problem."""


class RGBLevel:
    """A (Y, X, 3) uint8 view of an array with axes ``axes`` (e.g. 'YXS', 'CYX', 'TCZYX')."""

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, source, axes: str, path: Path):
        self.source, self.axes, self.path = source, axes, path
        # A fresh name per opened level: napari's dask cache must never serve pixels of an
        # earlier file at the same path (object ids are reused, paths are rewritten).
        self._token = uuid.uuid4().hex
        for axis in axes:
            if axis not in "YX" + CHANNEL_AXES and source.shape[axes.index(axis)] != 1:
                raise SlideError(
                    f"{path}: has {source.shape[axes.index(axis)]} image planes (axes '{axes}'); "
                    "expected one RGB, RGBA or grayscale image"
                )
        layout = "".join(a for a in axes if a in "YX" + CHANNEL_AXES)
        if layout not in ("YX", "YXS", "YXC", "SYX", "CYX"):
            raise SlideError(f"{path}: unsupported axes '{axes}'; expected YX, YXS or CYX")
        self.channels_first = layout[0] in CHANNEL_AXES
        channel_axis = layout[0] if self.channels_first else layout[-1]
        self.channels = 1 if layout == "YX" else source.shape[axes.index(channel_axis)]
        if self.channels not in (1, 2, 3, 4):
            raise SlideError(
                f"{path}: has {self.channels} channels; expected RGB, RGBA or grayscale"
            )
        dtype = np.dtype(source.dtype)
        if dtype != np.uint8 and dtype != np.uint16 and not np.issubdtype(dtype, np.floating):
            raise SlideError(f"{path}: pixel type {dtype} is not supported (use 8/16-bit or float)")
        self.shape = (source.shape[axes.index("Y")], source.shape[axes.index("X")], 3)
        if min(self.shape[:2]) == 0:
            raise SlideError(f"{path}: the image is empty")

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > 3:
            raise IndexError(f"RGBLevel has 3 dimensions, got {len(key)} indices")
        rows, columns, channels = (*key, slice(None), slice(None), slice(None))[:3]
        if not all(isinstance(k, slice) for k in (rows, columns, channels)):
            raise TypeError(f"RGBLevel takes slices, got {key!r}")
        index = tuple(
            rows if a == "Y" else columns if a == "X" else slice(None) if a in CHANNEL_AXES else 0
            for a in self.axes
        )
        block = np.asarray(self.source[index])
        if self.channels_first:
            block = np.moveaxis(block, 0, -1)
        if block.ndim == 2:
            block = block[..., None]
        block = np.repeat(block[..., :1], 3, axis=-1) if self.channels < 3 else block[..., :3]
        return _as_uint8(block)[..., channels]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        pixels = self[:, :]
        return pixels if dtype is None else pixels.astype(dtype)

    def __dask_tokenize__(self):
        return (type(self).__name__, self._token)

    def as_dask(self, fallback_chunk_px: int = 512) -> da.Array:
        """The lazy level; its chunks follow the file's own tiles where it has any."""
        chunks = (*self._chunks_yx(fallback_chunk_px), 3)
        return da.from_array(
            self,
            chunks=chunks,
            name=f"rgb-level-{tokenize(self, chunks)}",
            meta=np.empty((0, 0, 0), np.uint8),
            asarray=True,
            fancy=False,
        )

    def _chunks_yx(self, fallback_px: int) -> tuple[int, int]:
        chunks = getattr(self.source, "chunks", None)
        if not isinstance(chunks, tuple) or not all(isinstance(c, int) for c in chunks):
            return (min(fallback_px, self.shape[0]), min(fallback_px, self.shape[1]))
        return (chunks[self.axes.index("Y")], chunks[self.axes.index("X")])


def _as_uint8(block: np.ndarray) -> np.ndarray:
    if block.dtype == np.uint8:
        return block
    if block.dtype == np.uint16:
        return (block // 257).astype(np.uint8)  # full 16-bit range onto 0..255
    # Float images are 0..1; NaN (no data) is shown as black, not a cast warning.
    return (np.clip(np.nan_to_num(block, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
