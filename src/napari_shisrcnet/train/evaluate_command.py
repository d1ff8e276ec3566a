"""``shisrcnet evaluate``: a checkpoint on the split it stores, never on what it has seen.

The split comes from the checkpoint (patient ids; image names for the leaky split), not
from a seed. Images of patients the model, or a model it was initialised from, trained or
validated on are refused unless ``--include-seen`` is given; the report then says so
everywhere it is shown. Reports go under ``--out`` or beside ``--json`` (or ./eval-SPLIT),
never into the checkpoint's folder, which may be an installed package.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.breakhis import ImageRecord, class_names_for, index_dataset, labels_for
from ..data.split_record import SplitRecord, data_fingerprint
from ..errors import OptionError
from .config import TrainConfig

SEEN_LABEL = "INCLUDES SEEN DATA (trained or validated on; not a held-out figure)"


def evaluated_indices(
    split: str, stored: SplitRecord | None, records: list[ImageRecord], path: Path
) -> list[int]:
    if split == "all":
        return list(range(len(records)))
    if stored is None:
        raise OptionError(
            f"{path} stores no training split, so its '{split}' split is unknown; "
            "evaluate on data it never saw with split 'all'",
            "split",
        )
    indices = stored.select(records, split)
    if not indices:
        raise OptionError(
            f"none of the {split} patients stored in {path} are in this data folder",
            "split",
        )
    return indices


def seen_refusal(
    stored: SplitRecord | None, records: list[ImageRecord], path: Path
) -> tuple[str, int]:
    """('' or why these records may not be reported on, how many are seen)."""
    if stored is None:
        return f"{path} does not record what it was trained on", len(records)
    if stored.unrecorded_parents:
        parents = ", ".join(stored.unrecorded_parents)
        return f"{path} was initialised from {parents}, which record no split", len(records)
    seen = stored.seen(records)
    if not seen:
        return "", 0
    patients = sorted({records[i].patient for i in seen})
    shown = ", ".join(patients[:5]) + (" ..." if len(patients) > 5 else "")
    return (
        f"{len(seen)} of the {len(records)} images belong to {len(patients)} patient(s) "
        f"{path.name} or a model it was initialised from trained or validated on ({shown})",
        len(seen),
    )


def headline(report: dict) -> str:
    """The one-line summary, with intervals where computed."""
    ci = report.get("ci95", {})

    def interval(key: str, offset: float = 0.0) -> str:
        if key not in ci:
            return ""
        low, high = ci[key]
        return f" [95% CI {low + offset:.3f}, {high + offset:.3f}]"

    parts = []
    if "psnr" in report:
        gain = report["psnr"] - report["psnr_bicubic"]
        parts.append(
            f"PSNR {report['psnr']:.2f} dB vs bicubic {report['psnr_bicubic']:.2f} dB "
            f"(gain {gain:+.2f}{interval('psnr_gain')}), "
            f"SSIM {report['ssim']:.4f} vs {report['ssim_bicubic']:.4f}"
        )
    if "accuracy_image" in report:
        recalls = ", ".join(f"{k} {v:.3f}" for k, v in report["recall_per_class"].items())
        parts.append(
            f"accuracy {report['accuracy_image']:.3f}{interval('accuracy_image')} (image), "
            f"{report['accuracy_patient']:.3f}{interval('accuracy_patient')} (patient), "
            f"balanced {report['balanced_accuracy_image']:.3f}; recall {recalls}"
        )
    if "roc_auc_image" in report:
        parts.append(f"ROC AUC {report['roc_auc_image']:.3f}{interval('roc_auc_image')}")
    parts.append(f"{report['n_images']} images, {report['n_patients']} patients")
    line = "; ".join(parts)
    return f"{SEEN_LABEL}: {line}" if report.get("includes_seen") else line


def report_folder(args) -> Path:
    if args.out is not None:
        return args.out
    if args.json is not None:
        return args.json.parent / f"{args.json.stem}-figures"
    return Path.cwd() / f"eval-{args.split}"


def run_evaluate(args) -> int:
    from ..engine.inference import resolve_device
    from ..model import load_checkpoint
    from ..model.bundled import checkpoint_path
    from .evaluate import evaluate_records
    from .report import write_report

    path = checkpoint_path(args.checkpoint)
    model, info = load_checkpoint(path)
    trained = info.provenance.get("train_config")
    config = TrainConfig.from_dict(trained) if trained else TrainConfig(scale=info.scale or 2)
    if getattr(args, "degradation", None):
        config = replace(config, degradation=args.degradation)
    records = index_dataset(args.data_root, config.magnification)
    stored = SplitRecord.from_provenance(info.provenance)
    indices = evaluated_indices(args.split, stored, records, path)
    chosen = [records[i] for i in indices]
    refusal, n_seen = seen_refusal(stored, chosen, path)
    if refusal and not args.include_seen:
        raise OptionError(
            f"{refusal}: refusing to report on them (nothing was written); evaluate "
            "on data it never saw, or report anyway, labelled as seen",
            "include_seen",
        )
    class_names = class_names_for(records, config.classes)
    labels = labels_for(records, config.classes)[indices]
    metrics = evaluate_records(
        model,
        chosen,
        labels,
        class_names,
        replace(config, val_crop_px=None),
        resolve_device(args.device),
        with_figures=True,
        intervals=True,
        class_logit_offsets=info.class_logit_offsets,
    )
    extra: dict = {"checkpoint": str(path), "split": args.split, "degradation": config.degradation}
    extra["class_logit_offsets"] = info.class_logit_offsets  # None: the paper's argmax
    if refusal:
        extra.update(includes_seen=True, seen_images=n_seen, seen_reason=refusal)
    if stored is not None and stored.data_fingerprint != data_fingerprint(records, args.data_root):
        extra["data_note"] = "data folder differs from the training index; split by patient id"
    out = report_folder(args)
    report = write_report(metrics, out, class_names, config.scale, extra)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=_jsonable))
    print(f"{args.split}: {headline(report)} -> {out}")
    return 0


def _jsonable(value):
    return value.tolist() if isinstance(value, np.ndarray) else str(value)
