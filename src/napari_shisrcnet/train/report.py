"""Evaluation reports: JSON, Markdown, a confusion-matrix PNG and an LR/bicubic/SR/HR PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..figures import pyplot, save

REPORT_KEYS = (
    "psnr",
    "ssim",
    "psnr_bicubic",
    "ssim_bicubic",
    "psnr_y",
    "ssim_y",
    "psnr_y_bicubic",
    "ssim_y_bicubic",
    "accuracy_image",
    "balanced_accuracy_image",
    "roc_auc_image",
    "accuracy_patient",
    "n_images",
    "n_patients",
)


def save_confusion_matrix(matrix, class_names, path: Path) -> Path:
    plt = pyplot()
    matrix = np.asarray(matrix)
    figure, axes = plt.subplots(
        figsize=(1.2 + 0.7 * len(class_names), 1.0 + 0.6 * len(class_names))
    )
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    return save(figure, path, dpi=120)


def save_comparison(example: dict, scale: int, psnr: dict, path: Path) -> Path:
    """LR (nearest-upsampled), bicubic, SR and HR side by side, zoomed on the centre."""
    plt = pyplot()
    hr = example["hr"]
    size = min(192, *hr.shape[:2])
    y, x = (hr.shape[0] - size) // 2, (hr.shape[1] - size) // 2
    panels = {
        "LR": np.repeat(np.repeat(example["lr"], scale, 0), scale, 1)[y : y + size, x : x + size],
        f"bicubic ({psnr['bicubic']:.2f} dB)": example["bicubic"][y : y + size, x : x + size],
        f"SR ({psnr['sr']:.2f} dB)": example["sr"][y : y + size, x : x + size],
        "HR": hr[y : y + size, x : x + size],
    }
    figure, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for axis, (title, image) in zip(axes, panels.items(), strict=True):
        axis.imshow(np.clip(image, 0, 1), interpolation="nearest")
        axis.set_title(title)
        axis.axis("off")
    figure.suptitle(f"{example['name']} (x{scale}; PSNR of the whole image)")
    return save(figure, path, dpi=120)


def _markdown(report: dict) -> str:
    lines = [
        f"# Evaluation: {report.get('checkpoint', '')}",
        "",
        f"Split: {report.get('split')} ({report.get('n_images')} images, "
        f"{report.get('n_patients')} patients)",
        "",
    ]
    if report.get("includes_seen"):
        lines += [f"**INCLUDES SEEN DATA**: {report.get('seen_reason', '')}.", ""]
    lines += ["| metric | value | 95 % CI (patient bootstrap) |", "|---|---|---|"]
    intervals = report.get("ci95", {})
    if "psnr" in report and "psnr_bicubic" in report:
        report = {**report, "psnr_gain": report["psnr"] - report["psnr_bicubic"]}
    for key in (*REPORT_KEYS, "psnr_gain"):
        if key in report:
            value = report[key]
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            low_high = intervals.get(key)
            interval = f"{low_high[0]:.4f} - {low_high[1]:.4f}" if low_high else ""
            lines.append(f"| {key} | {shown} | {interval} |")
    if "recall_per_class" in report:
        lines += ["", "| class | recall |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in report["recall_per_class"].items()]
    lines += [
        "",
        "PSNR/SSIM: RGB in [0, 1], border of `scale` px cropped, scikit-image, "
        "data_range = 1; `_y`: BT.601 luma. Patient accuracy: mean probability per patient.",
    ]
    return "\n".join(lines) + "\n"


def write_report(metrics: dict, out_dir: Path, class_names, scale: int, extra: dict) -> dict:
    """Write report.json, report.md and the figures; return the JSON-able report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    example = metrics.pop("_example", None)
    metrics.pop("_probabilities", None)
    report = {**extra, **metrics}
    if "confusion_matrix" in report:
        report["confusion_matrix_png"] = str(
            save_confusion_matrix(
                report["confusion_matrix"], class_names, out_dir / "confusion_matrix.png"
            )
        )
    if example is not None:
        from .metrics import image_quality

        psnr = {
            "sr": image_quality(example["sr"], example["hr"], scale)["psnr"],
            "bicubic": image_quality(example["bicubic"], example["hr"], scale)["psnr"],
        }
        report["comparison_png"] = str(
            save_comparison(example, scale, psnr, out_dir / "comparison.png")
        )
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    (out_dir / "report.md").write_text(_markdown(report))
    return report
