"""Patient-level, class-stratified splits and k folds (seeded), plus the paper's leaky split.

Patients never straddle a split. The paper's image-level random 7:3 split puts every
patient on both sides (inflating accuracy); it is offered only as ``leaky_image_split``
for comparison with the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .breakhis import DataError


@dataclass(frozen=True)
class Split:
    """Indices into the record list; ``leaky`` marks an image-level (patient-mixing) split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    leaky: bool = False

    def named(self, name: str) -> np.ndarray:
        if name == "all":
            return np.sort(np.concatenate([self.train, self.val, self.test]))
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def _fold_out(indices: np.ndarray, labels, groups, n_splits: int, seed: int, fold: int = 0):
    """Split ``indices`` into (rest, held-out fold ``fold``) by groups, stratified by label."""
    n_groups = len(set(np.asarray(groups)[indices]))
    if n_groups < n_splits:
        raise DataError(f"only {n_groups} patients; cannot form {n_splits} patient-level folds")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(indices, np.asarray(labels)[indices], np.asarray(groups)[indices]))
    rest, held_out = folds[fold]
    return indices[rest], indices[held_out]


def patient_split(
    labels: Sequence[int], patients: Sequence[str], val_fraction=0.2, test_fraction=0.2, seed=0
) -> Split:
    """Train / validation / test by patient, stratified by class, seeded."""
    everything = np.arange(len(labels))
    test = np.array([], int)
    rest = everything
    if test_fraction > 0:
        rest, test = _fold_out(everything, labels, patients, round(1 / test_fraction), seed)
    train, val = _fold_out(
        rest, labels, patients, round((1 - test_fraction) / val_fraction), seed + 1
    )
    return Split(np.sort(train), np.sort(val), np.sort(test))


def patient_folds(
    labels: Sequence[int], patients: Sequence[str], k: int = 5, val_fraction=0.2, seed=0
) -> list[Split]:
    """k-fold cross-validation by patient: fold i tests on the i-th patient group; a
    validation set (for checkpoint selection) is carved from the other folds' patients."""
    everything = np.arange(len(labels))
    splits = []
    for fold in range(k):
        rest, test = _fold_out(everything, labels, patients, k, seed, fold)
        train, val = _fold_out(rest, labels, patients, max(2, round(1 / val_fraction)), seed + 1)
        splits.append(Split(np.sort(train), np.sort(val), np.sort(test)))
    return splits


def leaky_image_split(n_images: int, test_fraction=0.3, val_fraction=0.2, seed=0) -> Split:
    """The paper's image-level random split, 7:3 by default (patients on both sides; for
    comparison only). Validation images (for checkpoint selection, which the paper does on
    its test images) are ``val_fraction`` of the training side, so train:test stays 7:3."""
    order = np.random.default_rng(seed).permutation(n_images)
    n_test = round(test_fraction * n_images)
    test, rest = order[:n_test], order[n_test:]
    n_val = max(1, round(val_fraction * len(rest))) if len(rest) > 1 else 0
    return Split(np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.sort(test), leaky=True)
