"""Honest metrics, with their conventions stated.

Images: RGB float in [0, 1] (outputs clamped), a border of ``scale`` pixels cropped
from every side, PSNR and SSIM from scikit-image with ``data_range=1`` (SSIM over the
colour channels, ``channel_axis=-1``, Gaussian-free 7x7 window: scikit-image's
default). The Y-channel variant uses ITU-R BT.601 luma of the same images.
Classification: image-level and patient-level accuracy (a patient's score is the mean
of its images' probabilities), balanced accuracy, per-class recall, confusion matrix, and
for two classes the image-level ROC AUC of the second class's probability. A
patient whose images carry different labels has no single true class: it is left out of
patient-level accuracy and counted in ``n_patients_mixed_labels`` (never broken by argmax).
Intervals: 95 % percentile bootstrap over patients (images of a patient are not
independent, so patients, not images, are resampled), 2000 resamples, seeded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    recall_score,
    roc_auc_score,
)


def _prepare(image: np.ndarray, border_px: int) -> np.ndarray:
    image = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    if border_px:
        image = image[border_px:-border_px, border_px:-border_px]
    return image


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 Y in [0, 1] (16-235 range mapped as in MATLAB's rgb2ycbcr, then / 255)."""
    return rgb2ycbcr(image)[..., 0] / 255.0


def image_quality(sr: np.ndarray, hr: np.ndarray, border_px: int) -> dict[str, float]:
    """PSNR/SSIM on RGB and on Y for (Y, X, 3) images in [0, 1]."""
    sr, hr = _prepare(sr, border_px), _prepare(hr, border_px)
    return {
        "psnr": peak_signal_noise_ratio(hr, sr, data_range=1.0),
        "ssim": structural_similarity(hr, sr, data_range=1.0, channel_axis=-1),
        "psnr_y": peak_signal_noise_ratio(luma(hr), luma(sr), data_range=1.0),
        "ssim_y": structural_similarity(luma(hr), luma(sr), data_range=1.0),
    }


def classification_report(
    probabilities: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    patients: Sequence[str],
    class_names: Sequence[str],
    groups: dict[str, Sequence] | None = None,
) -> dict:
    """Accuracy (image and patient level), balanced accuracy, recall, confusion matrix.

    ``groups`` maps a name (e.g. "magnification") to a per-image key; accuracy is then
    also reported per key.
    """
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(class_names)))
    by_patient: dict[str, list[int]] = defaultdict(list)
    for index, patient in enumerate(patients):
        by_patient[patient].append(index)
    patient_labels, patient_predictions, mixed = [], [], 0
    for indices in by_patient.values():
        if len(set(labels[indices].tolist())) > 1:
            mixed += 1
            continue
        patient_labels.append(labels[indices[0]])
        patient_predictions.append(probabilities[indices].mean(axis=0).argmax())
    report = {
        "accuracy_image": float((predicted == labels).mean()),
        "balanced_accuracy_image": float(balanced_accuracy_score(labels, predicted)),
        "accuracy_patient": (
            float(np.mean(np.equal(patient_labels, patient_predictions)))
            if patient_labels
            else float("nan")
        ),
        "n_patients_mixed_labels": mixed,
        "recall_per_class": dict(
            zip(
                class_names,
                recall_score(
                    labels, predicted, labels=classes, average=None, zero_division=0
                ).tolist(),
                strict=True,
            )
        ),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "n_images": len(labels),
        "n_patients": len(by_patient),
    }
    if len(class_names) == 2 and len(set(labels.tolist())) == 2:
        # Threshold-free: how well the malignant probability ranks the images.
        report["roc_auc_image"] = float(roc_auc_score(labels, probabilities[:, 1]))
    for name, group_keys in (groups or {}).items():
        keys = np.asarray(group_keys)
        report[f"accuracy_by_{name}"] = {
            str(key): float((predicted[keys == key] == labels[keys == key]).mean())
            for key in sorted(set(keys.tolist()))
        }
    return report


BOOTSTRAP_RESAMPLES = 2000


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present (a resample may lack one)."""
    return float(np.mean([(predicted[labels == c] == c).mean() for c in np.unique(labels)]))


def patient_bootstrap(
    patients: Sequence[str],
    labels: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    psnr_gain: dict[str, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95 % intervals, resampling patients: image and balanced accuracy, ROC AUC (two
    classes), patient accuracy (single-label patients), and the mean of each per-image PSNR
    gain in ``psnr_gain``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, patient in enumerate(patients):
        groups[patient].append(index)
    members = [np.asarray(g) for g in groups.values()]
    predicted = hits = positive = None
    if probabilities is not None and labels is not None:
        predicted = probabilities.argmax(1)
        positive = probabilities[:, 1] if probabilities.shape[1] == 2 else None
        hits = [  # per patient: right or wrong; None for a mixed-label patient
            bool(probabilities[m].mean(0).argmax() == labels[m[0]])
            if len(set(labels[m].tolist())) == 1
            else None
            for m in members
        ]
    samples: dict[str, list[float]] = defaultdict(list)
    rng = np.random.default_rng(seed)
    for _ in range(BOOTSTRAP_RESAMPLES):
        chosen = rng.integers(0, len(members), len(members))
        images = np.concatenate([members[c] for c in chosen])
        for name, gains in (psnr_gain or {}).items():
            samples[name].append(float(gains[images].mean()))
        if predicted is not None and hits is not None and labels is not None:
            samples["accuracy_image"].append(float((predicted[images] == labels[images]).mean()))
            samples["balanced_accuracy_image"].append(
                balanced_accuracy(labels[images], predicted[images])
            )
            if positive is not None and len(set(labels[images].tolist())) == 2:
                auc = roc_auc_score(labels[images], positive[images])
                samples["roc_auc_image"].append(float(auc))
            patient_hits = [hits[c] for c in chosen if hits[c] is not None]
            if patient_hits:
                samples["accuracy_patient"].append(float(np.mean(patient_hits)))
    return {
        name: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
        for name, v in samples.items()
    }
