"""Resumable OME-Zarr (NGFF 0.4) results, written chunk by chunk.

Layout of ``NAME.ome.zarr``:
- ``0, 1, ...``: the image pyramid, axes (c, y, x), uint8 RGB, physical scale in µm;
- ``labels/tile_classes``: the tile class map as NGFF labels (0 = background,
  class i -> i + 1) with colours and class names;
- ``tile_probabilities``: per-tile class probabilities (rows, columns, classes).

A run first records its signature (input, model, tiling, version) with
``complete: false``; the NGFF ``multiscales`` metadata that readers look for is
written only when the image is finished, and ``complete: true`` last. Finished
batches are logged in ``.shisrcnet/<stage>.done``, so rerunning the same command
resumes. A folder from a different run is refused, never silently mixed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import zarr
from ome_zarr.format import FormatV04
from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

from .pyramid import PyramidBuilder, pyramid_level_count

ATTRIBUTE_KEY = "napari_shisrcnet"
_FORMAT = FormatV04()


def write_rgb_tile(level: zarr.Array, y: int, x: int, pixels: np.ndarray) -> None:
    """Write (h, w, 3) pixels at (y, x) of a (3, Y, X) level.

    Made planar and contiguous first: 10-25 % faster than handing zarr a transposed view,
    copy included (``benchmarks/write_throughput.py --chunk-costs``).
    """
    height, width = pixels.shape[:2]
    level[:, y : y + height, x : x + width] = np.ascontiguousarray(pixels.transpose(2, 0, 1))


class ResultError(ValueError):
    """An output folder that cannot be written as asked; the message says why."""


def _axes(unit: str | None) -> list[dict]:
    spatial = {"type": "space", **({"unit": unit} if unit else {})}
    return [{"name": "c", "type": "channel"}, {"name": "y", **spatial}, {"name": "x", **spatial}]


class ResultStore:
    """One OME-Zarr result folder: create it, or resume it if the signature matches."""

    def __init__(self, path: str | os.PathLike, signature: dict, overwrite: bool = False):
        self.path = Path(path)
        self.signature = json.loads(json.dumps(signature))  # normalise tuples etc.
        existing = self._existing_attributes()
        if existing is not None and overwrite:
            shutil.rmtree(self.path)
            existing = None
        if existing is None:
            if self.path.exists():
                raise ResultError(
                    f"{self.path} exists and is not a napari-shisrcnet result; "
                    "choose another output folder"
                )
            self.group = zarr.open_group(self.path, mode="w", zarr_format=2)
            self.group.attrs[ATTRIBUTE_KEY] = {"signature": self.signature, "complete": False}
        else:
            if existing.get("signature") != self.signature:
                raise ResultError(
                    f"{self.path} holds a result of a different run (input, model or settings "
                    "differ); use --overwrite or another --out"
                )
            self.group = zarr.open_group(self.path, mode="r+", zarr_format=2)
        self._log_dir = self.path / ".shisrcnet"
        self._log_dir.mkdir(exist_ok=True)
        self._log_lock = threading.Lock()  # batches are logged by several writer threads

    @staticmethod
    def recorded_state(path: str | os.PathLike) -> dict | None:
        """What the result at ``path`` records (signature, batching, ...), or None if
        there is no result of ours there."""
        try:
            return dict(zarr.open_group(path, mode="r").attrs[ATTRIBUTE_KEY])
        except Exception:
            return None

    @staticmethod
    def record(path: str | os.PathLike, key: str, value) -> None:
        """Record ``key: value`` in the state of the existing result at ``path``."""
        group = zarr.open_group(path, mode="r+")
        group.attrs[ATTRIBUTE_KEY] = {**group.attrs[ATTRIBUTE_KEY], key: value}

    def _existing_attributes(self) -> dict | None:
        if not self.path.exists():
            return None
        attributes = self.recorded_state(self.path)
        if attributes is not None:
            return attributes
        if self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()  # an empty folder holds nothing to lose
            return None
        # Raised outside any except block: no zarr error rides along (a dask worker could
        # not send that back, and the CLI would show a traceback instead of this line).
        raise ResultError(
            f"{self.path} exists and is not a napari-shisrcnet result; choose another output folder"
        )

    @property
    def complete(self) -> bool:
        return bool(self.group.attrs[ATTRIBUTE_KEY].get("complete"))

    @property
    def summary(self) -> dict:
        return dict(self.group.attrs[ATTRIBUTE_KEY].get("summary") or {})

    def remember(self, key: str, value):
        """Return the value recorded under ``key`` by an earlier run, else record ``value``.

        Used for batch sizes: a resumed run must batch exactly as the first did.
        """
        state = dict(self.group.attrs[ATTRIBUTE_KEY])
        if key not in state:
            state[key] = value
            self.group.attrs[ATTRIBUTE_KEY] = state
        return state[key]

    # -- progress log -------------------------------------------------------------
    def done_batches(self, stage: str) -> set[int]:
        """Finished batches, from every process that worked on this result."""
        return {
            int(line)
            for log in self._log_dir.glob(f"{stage}*.done")
            for line in log.read_text().split()
        }

    def mark_batch_done(self, stage: str, index: int, shard: int | None = None) -> None:
        # One log per shard: appends from several cluster workers never share a file.
        name = f"{stage}.done" if shard is None else f"{stage}-shard{shard}.done"
        with self._log_lock, open(self._log_dir / name, "a") as log:
            log.write(f"{index}\n")

    # -- image ----------------------------------------------------------------------
    def image_level(self, level: int) -> zarr.Array:
        """Image level ``level``, opened for fast writing.

        zarr opens an existing array with ``write_empty_chunks=False``: every chunk write
        then first compares the chunk with the fill value, which made chunk writes of
        tissue 1.5-2.3x slower (``benchmarks/write_throughput.py --chunk-costs``).
        Our chunks are written once and are almost never empty, so the check only costs.
        """
        return self.group[str(level)].with_config({"write_empty_chunks": True})

    def _require_image_level(
        self, level: int, shape_yx: tuple[int, int], chunk_px: int
    ) -> zarr.Array:
        """Image level ``level``, (3, Y, X) uint8, created on first use."""
        if str(level) in self.group:
            return self.image_level(level)
        return self.group.create_array(
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
        self,
        pixel_size: float,
        translation: tuple[float, float],
        unit: str | None,
        name: str,
        pyramid: PyramidBuilder | None = None,
    ) -> int:
        """Complete the pyramid (``pyramid``: the builder that grew it while level 0 was
        written) and write the NGFF metadata; return the level count."""
        pyramid = pyramid or self.pyramid_builder()
        pyramid.finish()
        datasets = []
        for level in range(len(pyramid.levels)):
            size = pixel_size * 2**level
            # A coarser pixel's centre sits (2^level - 1) / 2 fine pixels further in.
            shift = (2**level - 1) / 2 * pixel_size
            datasets.append(
                {
                    "path": str(level),
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, size, size]},
                        {
                            "type": "translation",
                            "translation": [0.0, *(t + shift for t in translation)],
                        },
                    ],
                }
            )
        write_multiscales_metadata(self.group, datasets, fmt=_FORMAT, axes=_axes(unit), name=name)
        self.group.attrs["omero"] = {
            "channels": [
                {"label": c, "color": rgb, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
                for c, rgb in (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))
            ],
            "rdefs": {"model": "color"},
        }
        return len(pyramid.levels)

    # -- classification -----------------------------------------------------------------
    def save_classified_batch(self, index: int, rows_columns: np.ndarray, probs: np.ndarray):
        """Persist one batch of tile probabilities (atomic: written, then renamed)."""
        folder = self._log_dir / "classified"
        folder.mkdir(exist_ok=True)
        temporary = folder / f".batch-{index:06d}.npy"
        np.save(temporary, np.concatenate([rows_columns, probs], axis=1).astype(np.float32))
        os.replace(temporary, folder / f"batch-{index:06d}.npy")

    def classified_batches(self) -> dict[int, np.ndarray]:
        """Earlier batches: index -> (n, 2 + classes) array of row, column, probabilities."""
        folder = self._log_dir / "classified"
        if not folder.exists():
            return {}
        return {int(f.stem.split("-")[1]): np.load(f) for f in sorted(folder.glob("batch-*.npy"))}

    def write_probabilities(self, probabilities: np.ndarray) -> None:
        array = self.group.create_array(
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
        colors_rgba: list[tuple[int, int, int, int]],
        tile_size: float,
        translation: tuple[float, float],
        unit: str | None,
    ) -> None:
        """Write the tile class map (0 = background, i + 1 = class i) as NGFF labels."""
        labels = self.group.require_group("labels")
        labels.attrs["labels"] = ["tile_classes"]
        label_group = labels.require_group("tile_classes")
        array = label_group.create_array(
            "0", shape=(1, *label_map.shape), chunks=(1, 1024, 1024), dtype="uint8", overwrite=True
        )
        array[0] = label_map
        datasets = [
            {
                "path": "0",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, tile_size, tile_size]},
                    {"type": "translation", "translation": [0.0, *translation]},
                ],
            }
        ]
        write_multiscales_metadata(
            label_group, datasets, fmt=_FORMAT, axes=_axes(unit), name="tile_classes"
        )
        write_label_metadata(
            labels,
            "tile_classes",
            colors=[{"label-value": i + 1, "rgba": list(c)} for i, c in enumerate(colors_rgba)],
            properties=[{"label-value": i + 1, "class": n} for i, n in enumerate(class_names)],
            fmt=_FORMAT,
            source={"image": "../../"},
        )

    def mark_complete(self, summary: dict) -> None:
        self.group.attrs[ATTRIBUTE_KEY] = {
            **self.group.attrs[ATTRIBUTE_KEY],
            "complete": True,
            "summary": summary,
        }
