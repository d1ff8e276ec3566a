"""Resumable OME-Zarr (NGFF 0.4) results, written chunk by chunk.

Layout of ``NAME.ome.zarr``:
- ``0, 1, ...``: the image pyramid, axes (c, y, x), uint8 RGB, physical scale in µm;
- ``labels/tile_classes``: the tile class map as NGFF labels (0 = background,
  class i -> i + 1) with colours and class names;
- ``tile_probabilities``: per-tile class probabilities (rows, columns, classes).

A run first records its signature (input, model, settings, version) with
``complete: false`` (:mod:`.resume`); the NGFF ``multiscales`` metadata that readers look
for is written only when the image is finished, and ``complete: true`` last. A folder from
a different run is refused, never silently mixed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from ..errors import OptionError
from ..geometry import PixelGrid
from ..io.zarr_nodes import array_at
from . import ngff
from .paths import ResultPaths
from .pyramid import PyramidBuilder, pyramid_level_count
from .resume import ResumeState, read_record


def write_rgb_tile(level: zarr.Array, y: int, x: int, pixels: np.ndarray) -> None:
    """Write (h, w, 3) pixels at (y, x) of a (3, Y, X) level.

    Made planar and contiguous first: 10-25 % faster than handing zarr a transposed view,
    copy included (``benchmarks/write_throughput.py --chunk-costs``).
    """
    height, width = pixels.shape[:2]
    level[:, y : y + height, x : x + width] = np.ascontiguousarray(pixels.transpose(2, 0, 1))


class ResultError(OptionError):
    """An output folder that cannot be written as asked; the message says why."""


class ResultStore:
    """One OME-Zarr result folder. :meth:`open` creates it, or resumes it if its signature
    matches; ``overwrite`` replaces a result of a different run (never a foreign folder)."""

    def __init__(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.group: zarr.Group | None = None
        self.resume: ResumeState | None = None

    @property
    def paths(self) -> ResultPaths:
        return ResultPaths(self.path)

    @property
    def _group(self) -> zarr.Group:
        """The result group (:meth:`open` opens it)."""
        assert self.group is not None, "open() the result first"
        return self.group

    def recorded(self) -> dict:
        """What a result already there records (empty where there is none, or where it
        will be overwritten)."""
        return {} if self.overwrite else read_record(self.path) or {}

    def open(self, signature: dict) -> ResultStore:
        """Create the result, or resume the one there when it records ``signature``;
        its resume state is then :attr:`resume`."""
        signature = json.loads(json.dumps(signature))  # normalise tuples etc.
        existing = self._existing_record()
        if existing is not None and self.overwrite:
            shutil.rmtree(self.path)
            self.paths.remove_copies()  # no table or copy of the old result stays
            existing = None
        if existing is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.group = zarr.open_group(self.path, mode="w", zarr_format=2)
            self.resume = ResumeState.start(self.group, self.path, signature)
        elif existing.get("signature") != signature:
            raise ResultError(
                f"{self.path} holds a result of a different run (input, model or settings "
                "differ); overwrite it or choose another output folder",
                "overwrite",
                "out_dir",
            )
        else:
            self.group = zarr.open_group(self.path, mode="r+", zarr_format=2)
            self.resume = ResumeState(self.group, self.path)
        self.overwrite = False  # once: a second open() in this process resumes
        return self

    def _existing_record(self) -> dict | None:
        if not self.path.exists():
            return None
        record = read_record(self.path)
        if record is not None:
            return record
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()  # an empty folder holds nothing to lose
            return None
        # Raised outside any except block: no zarr error rides along (a dask worker could
        # not send that back, and the CLI would show a traceback instead of this line).
        raise ResultError(
            f"{self.path} exists and is not a napari-shisrcnet result; choose another "
            "output folder",
            "out_dir",
        )

    # -- image ----------------------------------------------------------------------
    def image_level(self, level: int) -> zarr.Array:
        """Image level ``level``, opened for fast writing.

        zarr opens an existing array with ``write_empty_chunks=False``: every chunk write
        then first compares the chunk with the fill value, which made chunk writes of
        tissue 1.5-2.3x slower (``benchmarks/write_throughput.py --chunk-costs``).
        Our chunks are written once and are almost never empty, so the check only costs.
        """
        return array_at(self._group, str(level)).with_config({"write_empty_chunks": True})

    def _require_image_level(
        self, level: int, shape_yx: tuple[int, int], chunk_px: int
    ) -> zarr.Array:
        """Image level ``level``, (3, Y, X) uint8, created on first use."""
        if str(level) in self._group:
            return self.image_level(level)
        return self._group.create_array(
            str(level),
            shape=(3, *shape_yx),
            chunks=(3, chunk_px, chunk_px),
            dtype="uint8",
            fill_value=0,
            config={"write_empty_chunks": True},
        )

    def image_level0(self, shape_yx: tuple[int, int], chunk_px: int) -> zarr.Array:
        """The full-resolution (3, Y, X) uint8 array, created once, chunked per tile."""
        return self._require_image_level(0, shape_yx, chunk_px)

    def pyramid_builder(self) -> PyramidBuilder:
        """A builder for levels 1.. of the image (created here, chunked like level 0)."""
        level0 = self.image_level(0)
        levels, (height, width), chunk_px = [level0], level0.shape[1:], level0.chunks[1]
        for level in range(1, pyramid_level_count((height, width))):
            height, width = (height + 1) // 2, (width + 1) // 2
            levels.append(self._require_image_level(level, (height, width), chunk_px))
        return PyramidBuilder(levels)

    def finish_image(
        self, grid: PixelGrid, name: str, pyramid: PyramidBuilder | None = None
    ) -> int:
        """Complete the pyramid (``pyramid``: the builder that grew it while level 0 was
        written, if any) and write the NGFF metadata, level 0 on ``grid``; return the
        level count."""
        pyramid = pyramid or self.pyramid_builder()
        pyramid.finish()
        ngff.write_image_metadata(self._group, grid, len(pyramid.levels), name, True, rgb=True)
        return len(pyramid.levels)

    # -- classification -----------------------------------------------------------------
    def write_probabilities(self, probabilities: np.ndarray) -> None:
        """Per-tile class probabilities (rows, columns, classes), NaN for background."""
        array = self._group.create_array(
            "tile_probabilities",
            shape=probabilities.shape,
            chunks=(1024, 1024, probabilities.shape[-1]),
            dtype="float32",
            fill_value=np.nan,
            overwrite=True,
        )
        array[:] = probabilities

    def write_labels(
        self,
        label_map: np.ndarray,
        class_names: tuple[str, ...],
        colors_rgb: list[tuple[int, int, int]],
        grid: PixelGrid,
    ) -> None:
        """The tile class map (0 = background, i + 1 = class i) as NGFF labels on ``grid``."""
        labels = self._group.require_group("labels")
        label_group = labels.require_group("tile_classes")
        array = label_group.create_array(
            "0", shape=(1, *label_map.shape), chunks=(1, 1024, 1024), dtype="uint8", overwrite=True
        )
        array[0] = label_map
        ngff.write_labels_metadata(
            labels,
            "tile_classes",
            grid,
            1,
            colors_rgba={i + 1: (*c, 255) for i, c in enumerate(colors_rgb)},
            properties={i + 1: {"class": n} for i, n in enumerate(class_names)},
            channels=True,
        )
