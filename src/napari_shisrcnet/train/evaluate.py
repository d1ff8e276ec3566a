"""Evaluate a model on whole images: SR quality against bicubic, and classification.

Per image: HR (cropped to a multiple of the scale; optionally a centre crop) ->
LR by the training degradation -> SR of the whole LR image and bicubic of the same
LR. Classification is done the way the slide engine does it: the image is cut into
tiles of the training field of view (last row/column shifted inward), each tile is
classified, and the image probability is the mean over its tiles (of softmax(logits +
the checkpoint's class logit offsets), where a decision rule was chosen on validation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..data.breakhis import ImageRecord
from ..data.degradations import degradation
from ..data.pairs import load_rgb, to_tensor
from ..engine.tiling import TileGrid
from ..geometry import Region
from ..model import SHISRCNet, SKNetFPNClassifier, SRMFENet, bicubic_upsample
from .decision import choose_logit_offset, decided_probabilities, shifted_probabilities
from .metrics import classification_report, image_quality, patient_bootstrap

#: A 1 dB PSNR gain over bicubic weighs like 5 points of balanced accuracy in joint training.
PSNR_GAIN_WEIGHT = 0.05


def selection_score(metrics: dict, stage: str) -> float:
    """The validation number that picks ``best.safetensors`` (higher is better)."""
    if stage == "sr":
        return metrics["psnr"] - metrics["psnr_bicubic"]
    if stage == "classifier":
        return metrics["balanced_accuracy_image"]
    gain = metrics["psnr"] - metrics["psnr_bicubic"]
    return metrics["balanced_accuracy_image"] + PSNR_GAIN_WEIGHT * gain


def _centre_crop(pixels: np.ndarray, size_px: int | None, scale: int) -> np.ndarray:
    height, width = (s - s % scale for s in pixels.shape[:2])
    if size_px is not None:
        size_px -= size_px % scale
        y, x = max(0, (height - size_px) // 2), max(0, (width - size_px) // 2)
        height, width = min(height, size_px), min(width, size_px)
        return pixels[y : y + height, x : x + width]
    return pixels[:height, :width]


def _tile_batch(image: torch.Tensor, tile_px: int) -> torch.Tensor:
    """Non-overlapping training-size tiles of a (3, H, W) image (edges shifted inward)."""
    grid = TileGrid(Region.whole((image.shape[-2], image.shape[-1])), tile_px, 0)
    return torch.stack(
        [image[:, y0:y1, x0:x1] for y0, y1, x0, x1 in (t.window for t in grid.tiles())]
    )


def _pair(record: ImageRecord, index: int, config, make_lr) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) of one evaluation image; the degradation is seeded by the image's index,
    so validation sees the same LR every epoch and on every device."""
    hr = to_tensor(_centre_crop(load_rgb(record.path), config.val_crop_px, config.scale))
    return make_lr(hr, config.scale, np.random.default_rng([index])), hr


@torch.inference_mode()
def predict_image(model, lr: torch.Tensor, hr: torch.Tensor, hr_tile_px: int, scale: int):
    """(SR image or None, (tiles, classes) logits or None) for one (3, h, w) LR image."""
    sr = tile_logits = None
    if isinstance(model, SHISRCNet | SRMFENet):
        sr_module = model.sr_module if isinstance(model, SHISRCNet) else model
        sr = sr_module(lr[None])[0]
    if isinstance(model, SHISRCNet):
        tile_logits = model(_tile_batch(lr, hr_tile_px // scale)).logits_sr
    elif isinstance(model, SKNetFPNClassifier):  # the "CF module only" baseline sees HR
        tile_logits = model(_tile_batch(hr, hr_tile_px)).logits
    return sr, tile_logits


def evaluate_records(
    model,
    records: Sequence[ImageRecord],
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    config,
    device: torch.device | str = "cpu",
    with_figures: bool = False,
    progress: Callable[[int, int], None] | None = None,
    intervals: bool = False,
    class_logit_offsets: Sequence[float] | None = None,
    keep_tile_logits: bool = False,
) -> dict:
    """Metrics over ``records`` (and, with ``with_figures``, one example image set; with
    ``intervals``, patient-bootstrap 95 % intervals under ``ci95``); ``progress(done,
    total)`` after each image. ``class_logit_offsets`` (a checkpoint's decision rule) are
    added to the logits; ``keep_tile_logits`` keeps each image's (tiles, classes) logits
    under ``_tile_logits`` (to choose a decision rule)."""
    scale = config.scale
    model = model.to(device).eval()
    qualities, bicubic_qualities, probabilities, tile_logits = [], [], [], []
    example = None
    make_lr = degradation(config.degradation)
    for index, record in enumerate(records):
        lr, hr = (t.to(device) for t in _pair(record, index, config, make_lr))
        sr, logits = predict_image(model, lr, hr, config.hr_crop_px, scale)
        if sr is not None:
            as_image = lambda t: t.clamp(0, 1).permute(1, 2, 0).cpu().numpy()  # noqa: E731
            bicubic = bicubic_upsample(lr[None], scale)[0]
            qualities.append(image_quality(as_image(sr), as_image(hr), scale))
            bicubic_qualities.append(image_quality(as_image(bicubic), as_image(hr), scale))
            if with_figures and example is None:
                example = {
                    "lr": as_image(lr),
                    "bicubic": as_image(bicubic),
                    "sr": as_image(sr),
                    "hr": as_image(hr),
                    "name": record.path.name,
                }
        if logits is not None:
            logits = logits.float().cpu()
            tile_logits.append(logits.numpy())
            probabilities.append(shifted_probabilities(logits, class_logit_offsets).numpy())
        if progress is not None:
            progress(len(qualities) or len(probabilities), len(records))
    metrics = _mean_qualities(qualities, bicubic_qualities)
    if probabilities:
        metrics.update(
            classification_metrics(np.stack(probabilities), records, labels, class_names)
        )
    if keep_tile_logits:
        metrics["_tile_logits"] = tile_logits
    metrics["n_images"] = len(records)
    metrics["n_patients"] = len({r.patient for r in records})
    if intervals:
        metrics["ci95"] = _intervals(records, labels, qualities, bicubic_qualities, probabilities)
    if with_figures:
        metrics["_example"] = example
        metrics["_probabilities"] = np.stack(probabilities) if probabilities else None
    return metrics


def classification_metrics(probabilities: np.ndarray, records, labels, class_names) -> dict:
    """Image and patient accuracy, recall, confusion matrix, accuracy by magnification."""
    return classification_report(
        probabilities,
        labels,
        [r.patient for r in records],
        class_names,
        groups={"magnification": [r.magnification for r in records]},
    )


def decided_on_validation(metrics: dict, records, labels, class_names) -> tuple[dict, dict]:
    """(metrics with the decision rule applied, the rule): a threshold chosen on these
    images (``metrics`` computed with ``keep_tile_logits``), then reported with it."""
    tile_logits = metrics.pop("_tile_logits")
    decision = choose_logit_offset(tile_logits, labels)
    offsets = decision["class_logit_offsets"]
    probabilities = decided_probabilities(tile_logits, offsets)
    metrics.update(classification_metrics(probabilities, records, labels, class_names))
    metrics["decision_offset"] = offsets[1]
    return metrics, decision


def _mean_qualities(qualities: list[dict], bicubic_qualities: list[dict]) -> dict:
    metrics = {}
    for key in qualities[0] if qualities else ():
        metrics[key] = float(np.mean([q[key] for q in qualities]))
        metrics[f"{key}_bicubic"] = float(np.mean([q[key] for q in bicubic_qualities]))
    return metrics


def _intervals(records, labels, qualities, bicubic_qualities, probabilities) -> dict:
    """Patient-bootstrap 95 % intervals of accuracy and of the per-image gains."""
    pairs = list(zip(qualities, bicubic_qualities, strict=True))
    gains = {
        f"{key}_gain": np.array([sr[key] - bicubic[key] for sr, bicubic in pairs])
        for key in (("psnr", "psnr_y") if qualities else ())
    }
    return patient_bootstrap(
        [r.patient for r in records],
        np.asarray(labels) if probabilities else None,
        np.stack(probabilities) if probabilities else None,
        gains,
    )
