"""Make a training run's split and bind it to its checkpoints, parents included.

A run initialised from other checkpoints (``--init``) inherits what they have seen: those
patients can never be held out for its test, so they are moved to its training side
before training starts, and its checkpoints carry them on to its own children.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.breakhis import ImageRecord
from ..data.split_record import SplitRecord, data_fingerprint, inherited
from ..data.splits import Split, leaky_image_split, patient_folds, patient_split
from ..model.bundled import checkpoint_path
from ..model.checkpoint import read_checkpoint_info
from .config import LEAKY_TEST_FRACTION, PATIENT_TEST_FRACTION, TrainConfig


def make_split(config: TrainConfig, labels, patients) -> Split:
    """The run's split: the leaky image split, fold ``fold`` of ``folds``, or the seeded
    patient split."""
    if config.split == "leaky":
        test_fraction = config.test_fraction
        if test_fraction is None:
            test_fraction = LEAKY_TEST_FRACTION
        return leaky_image_split(len(labels), test_fraction, config.val_fraction, config.seed)
    if config.folds > 1:
        return patient_folds(labels, patients, config.folds, config.val_fraction, config.seed)[
            config.fold
        ]
    test_fraction = PATIENT_TEST_FRACTION if config.test_fraction is None else config.test_fraction
    return patient_split(labels, patients, config.val_fraction, test_fraction, config.seed)


def parent_records(config: TrainConfig) -> list[tuple[str, SplitRecord | None]]:
    """(name, stored split record or None) of each ``--init`` checkpoint."""
    parents = []
    for name in config.init_checkpoints:
        info = read_checkpoint_info(checkpoint_path(name))
        parents.append((str(name), SplitRecord.from_provenance(info.provenance)))
    return parents


def split_kind(config: TrainConfig) -> str:
    if config.split == "leaky":
        return "leaky"
    if config.folds > 1:
        return f"fold {config.fold} of {config.folds}"
    return "patient"


def bind_split(
    config: TrainConfig, records: Sequence[ImageRecord], split: Split, data_root: str | Path
) -> tuple[Split, SplitRecord, int]:
    """The split with the parents' seen images moved from test to train, its record, and
    how many test images were moved."""
    parents = parent_records(config)
    seen_patients, seen_images, _ = inherited(parents)
    moved = np.array(
        [
            i
            for i in split.test
            if records[i].patient in seen_patients or records[i].path.name in seen_images
        ],
        int,
    )
    if len(moved):
        split = Split(
            np.sort(np.concatenate([split.train, moved])),
            split.val,
            np.setdiff1d(split.test, moved),
            split.leaky,
        )
    fingerprint = data_fingerprint(records, data_root)
    record = SplitRecord.of_training(records, split, split_kind(config), fingerprint, parents)
    return split, record, len(moved)
