"""Everything a result records so that a rerun resumes it: one reader and one writer.

- the record, in the result group's ``napari_shisrcnet`` attribute: the run's signature
  (input, model, resolved settings, version), ``complete`` (false until every output is
  written), the summary, batch sizes fixed by the first run, and a cluster run id;
- finished batches, one line each, in ``.shisrcnet/<stage>[-shard<k>].done`` (one file per
  cluster worker: appends from several processes never share a file);
- classified batches' tile probabilities in ``.shisrcnet/classified/batch-<index>.npy``.

Batches are fixed slices of the tile order, so a resumed run recomputes exactly the
batches an uninterrupted run would and ends bit-identical.
"""

from __future__ import annotations

import builtins
import os
import threading
from pathlib import Path

import numpy as np
import zarr

from ..io.zarr_nodes import RESULT_RECORD_KEY, attributes

RECORD_KEY = RESULT_RECORD_KEY
LOG_FOLDER = ".shisrcnet"


def read_record(path: str | os.PathLike) -> dict | None:
    """The record of the result at ``path``, or None where there is no result of ours."""
    try:
        return dict(attributes(zarr.open_group(path, mode="r"))[RECORD_KEY])
    except Exception:
        return None


class ResumeState:
    """The resume state of one result group (created with :meth:`start`)."""

    def __init__(self, group: zarr.Group, path: str | os.PathLike) -> None:
        self.group = group
        self.folder = Path(path) / LOG_FOLDER
        self.folder.mkdir(exist_ok=True)
        self._lock = threading.Lock()  # batches are logged by several writer threads

    @classmethod
    def start(cls, group: zarr.Group, path: str | os.PathLike, signature: dict) -> ResumeState:
        """Record a new run's signature, not complete yet."""
        group.attrs[RECORD_KEY] = {"signature": signature, "complete": False}
        return cls(group, path)

    # -- the record -------------------------------------------------------------------
    @property
    def record(self) -> dict:
        return dict(attributes(self.group)[RECORD_KEY])

    def _update(self, **values) -> None:
        self.group.attrs[RECORD_KEY] = {**self.record, **values}

    @property
    def signature(self) -> dict:
        return dict(self.record.get("signature") or {})

    @property
    def complete(self) -> bool:
        return bool(self.record.get("complete"))

    @property
    def summary(self) -> dict:
        return dict(self.record.get("summary") or {})

    def remember(self, key: str, value):
        """The value an earlier run recorded under ``key``, else record ``value`` (batch
        sizes: a resumed run, or another cluster worker, must batch exactly alike).
        A callable ``value`` is called only when nothing is recorded yet."""
        record = self.record
        if key not in record:
            value = value() if callable(value) else value
            self._update(**{key: value})
            return value
        return record[key]

    def set(self, key: str, value) -> None:
        """Record ``key: value`` (e.g. the cluster run that prepared this result)."""
        self._update(**{key: value})

    def mark_complete(self, summary: dict) -> None:
        """Every output is written: readers may now trust the result."""
        self._update(complete=True, summary=summary)

    # -- finished batches -------------------------------------------------------------
    def done_batches(self, stage: str) -> builtins.set[int]:  # plain `set` is the method above
        """Finished batches of ``stage``, from every process that worked on this result."""
        return {
            int(line)
            for log in self.folder.glob(f"{stage}*.done")
            for line in log.read_text().split()
        }

    def mark_batch_done(self, stage: str, index: int, shard: int | None = None) -> None:
        name = f"{stage}.done" if shard is None else f"{stage}-shard{shard}.done"
        with self._lock, open(self.folder / name, "a") as log:
            log.write(f"{index}\n")

    # -- classified batches -----------------------------------------------------------
    def save_classified_batch(self, index: int, rows_columns: np.ndarray, probs: np.ndarray):
        """Persist one batch of tile probabilities (atomic: written, then renamed)."""
        folder = self.folder / "classified"
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".batch-{index:06d}.npy"
        np.save(temporary, np.concatenate([rows_columns, probs], axis=1).astype(np.float32))
        os.replace(temporary, folder / f"batch-{index:06d}.npy")

    def restore_classified(self, grid_shape: tuple[int, int], n_classes: int):
        """(probabilities with NaN where not classified yet, indices of the batches done)."""
        probabilities = np.full((*grid_shape, n_classes), np.nan, np.float32)
        folder = self.folder / "classified"
        done = set()
        for saved_path in sorted(folder.glob("batch-*.npy")) if folder.exists() else ():
            saved = np.load(saved_path)
            rows, columns = saved[:, 0].astype(int), saved[:, 1].astype(int)
            probabilities[rows, columns] = saved[:, 2:]
            done.add(int(saved_path.stem.split("-")[1]))
        return probabilities, done
