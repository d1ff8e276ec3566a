"""A decision rule chosen on validation: a shift of the positive class's logit.

The paper predicts the class of highest probability (argmax). A classifier trained on
imbalanced data (BreaKHis: two malignant images per benign one) leans to the larger class;
``train --decision validation`` moves the binary decision threshold to where it balances
the classes on the validation patients. The threshold is stored as logit offsets, (0, b),
added to the class logits before the softmax, so that every consumer (tile maps,
heatmaps, image and patient scores, bootstrap intervals) keeps using argmax of the
probabilities and stays consistent. This is post-hoc logit adjustment (Menon et al.,
"Long-tail learning via logit adjustment", ICLR 2021) with the offset chosen on
validation data rather than from the class priors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import OptionError
from .metrics import balanced_accuracy

DECISION_RULES = ("argmax", "validation")
# Offsets searched, in logits: |b| <= 3 keeps the threshold between 5 % and 95 %.
OFFSET_GRID = np.round(np.linspace(-3.0, 3.0, 601), 4)


def check_decision_classes(rule: str, class_names: Sequence[str], data_root) -> None:
    if rule == "validation" and len(class_names) != 2:
        raise OptionError(
            f"--decision validation chooses a two-class threshold; {data_root} has "
            f"{len(class_names)} classes",
            "decision",
        )


def shifted_probabilities(tile_logits: torch.Tensor, offsets: Sequence[float] | None):
    """Class probabilities of one image: the mean over its tiles of softmax(logits + offsets)."""
    if offsets is not None:
        tile_logits = tile_logits + torch.as_tensor(offsets, dtype=tile_logits.dtype).to(
            tile_logits.device
        )
    return tile_logits.softmax(1).mean(0)


def decided_probabilities(tile_logits: list[np.ndarray], offsets: Sequence[float]) -> np.ndarray:
    """(images, classes) probabilities of images given as (tiles, classes) logits."""
    return np.stack(
        [shifted_probabilities(torch.from_numpy(logits), offsets).numpy() for logits in tile_logits]
    )


def _image_positive_probabilities(tile_logits: list[np.ndarray], offsets: np.ndarray):
    """(n_offsets, n_images) probability of class 1, for each candidate offset b."""
    columns = []
    for logits in tile_logits:  # (tiles, 2)
        margin = logits[:, 1] - logits[:, 0]  # the tile's log-odds of class 1
        columns.append((1 / (1 + np.exp(-(margin[None, :] + offsets[:, None])))).mean(1))
    return np.stack(columns, axis=1)


def choose_logit_offset(tile_logits: list[np.ndarray], labels: Sequence[int]) -> dict:
    """The offset b of class 1's logit that maximises balanced accuracy on these images.

    Among equally good offsets, 0 (the paper's argmax) is kept when it is one of them;
    otherwise the middle of the run of best offsets nearest to 0, so that the threshold
    sits between images rather than on one.
    """
    truth = np.asarray(labels)
    predicted = (_image_positive_probabilities(tile_logits, OFFSET_GRID) >= 0.5).astype(int)
    scores = np.array([balanced_accuracy(truth, row) for row in predicted])
    best = np.isclose(scores, scores.max())
    zero = int(np.argmin(np.abs(OFFSET_GRID)))
    if best[zero]:
        offset = 0.0
    else:
        runs = _runs(best)
        start, stop = min(
            runs, key=lambda run: min(abs(OFFSET_GRID[run[0]]), abs(OFFSET_GRID[run[1]]))
        )
        offset = float(np.round((OFFSET_GRID[start] + OFFSET_GRID[stop]) / 2, 3))
    return {
        "rule": "validation",
        "class_logit_offsets": [0.0, offset],
        "threshold": float(1 / (1 + np.exp(offset))),  # on the unshifted class-1 probability
        "balanced_accuracy": float(scores.max()),
        "balanced_accuracy_argmax": float(scores[zero]),
        "n_images": len(truth),
    }


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))
