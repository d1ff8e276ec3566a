"""Class balance for imbalanced training data (BreaKHis: 2 malignant images per benign).

``--class-balance loss`` weights the focal loss by inverse class frequency (its alpha,
normalised to a mean of 1 over the classes present, recorded in the checkpoint's config);
``--class-balance sampler`` draws each epoch's samples with probability inversely
proportional to their class's frequency (with replacement, seeded), so every class is
seen equally often. ``none`` (the paper's) trains on the data as they come.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # config checks its field against CLASS_BALANCE
    from .config import TrainConfig

CLASS_BALANCE = ("none", "loss", "sampler")


def inverse_frequency(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class weights 1 / count, mean 1 over the classes present (0 for absent ones)."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = np.where(counts > 0, 1 / np.maximum(counts, 1), 0.0)
    return weights * (counts > 0).sum() / weights.sum()


def with_class_balance(config: TrainConfig, train_labels: np.ndarray, n_classes: int):
    """``config`` with the focal alpha set from the training labels for ``loss``."""
    if config.class_balance != "loss" or config.loss.focal_alpha is not None:
        return config
    alpha = tuple(round(float(w), 6) for w in inverse_frequency(train_labels, n_classes))
    return replace(config, loss=replace(config.loss, focal_alpha=alpha))


def balanced_order(sample_labels: np.ndarray, rng: np.random.Generator) -> list[int]:
    """An epoch of sample indices drawn so that each class is equally likely."""
    weights = inverse_frequency(sample_labels, int(sample_labels.max()) + 1)[sample_labels]
    chosen = rng.choice(len(sample_labels), size=len(sample_labels), p=weights / weights.sum())
    return chosen.tolist()
