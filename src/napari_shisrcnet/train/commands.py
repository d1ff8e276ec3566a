"""``shisrcnet train`` and ``shisrcnet evaluate``: argument parsing over the training core."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from .config import DEFAULT_ARCHITECTURE, STAGES, TrainConfig

_TRAIN_OPTIONS = {  # CLI flag -> (TrainConfig field, type, help)
    "--scale": ("scale", int, "SR factor: 2, 4 or 8"),
    "--classes": ("classes", str, "binary (benign/malignant) or subtype (8 BreaKHis classes)"),
    "--stage": ("stage", str, f"one of {', '.join(STAGES)}"),
    "--epochs": ("epochs", int, "maximum epochs"),
    "--max-steps": (
        "max_steps",
        int,
        "stop after this many optimiser steps (0: validate and save the --init weights)",
    ),
    "--batch-size": ("batch_size", int, "images per batch"),
    "--hr-crop-px": ("hr_crop_px", int, "HR training crop side"),
    "--degradation": (
        "degradation",
        str,
        "how LR is made from HR: bicubic (the paper's), scanner (box averaging + JPEG, as "
        "a slide pyramid), realistic (random blur, resize, noise, JPEG), or a mixture such "
        "as scanner+bicubic (each pair made by one of them; docs/training.md)",
    ),
    "--lr": ("lr", float, "Adam learning rate"),
    "--lr-decay-every": (
        "lr_decay_every_epochs",
        int,
        "multiply the learning rate by 0.9 this often",
    ),
    "--sr-channels": ("sr_channels", int, "SR module width"),
    "--sr-blocks": ("sr_blocks", int, "number of MFE blocks"),
    "--sr-fusion": (
        "sr_fusion",
        str,
        "how MFE blocks fuse their branches: paper (MSF as written), selective (learned, "
        "SKNet-style) or mean",
    ),
    "--classifier-width": ("classifier_width", float, "SKNet-26 width multiplier"),
    "--magnification": ("magnification", int, "use only images at this magnification (e.g. 100)"),
    "--train-mpp": (
        "train_mpp",
        float,
        "µm/px of the training images, recorded in the checkpoint: slides are then read at "
        "this pixel size times the scale (see docs/training.md for BreaKHis)",
    ),
    "--split": ("split", str, "patient (default) or leaky (the paper's image-level 7:3)"),
    "--test-fraction": (
        "test_fraction",
        float,
        "held-out test share (default: 0.2 of the patients; 0.3 of the images with --split leaky)",
    ),
    "--folds": ("folds", int, "k-fold cross-validation by patient (reports mean +- std)"),
    "--fold": ("fold", int, "train only this fold (with --folds)"),
    "--init": (
        "init_checkpoints",
        str,
        "start from these weights (fine-tuning): a checkpoint of the same architecture or "
        "'default'; for a joint model also an SR-only and/or a classifier-only checkpoint "
        "(repeat --init), which initialise its two modules; an x2 checkpoint starts an x4 "
        "network, a narrower SR module a wider one (same function)",
    ),
    "--repeats": ("repeats", int, "random crops per training image per epoch"),
    "--ema-decay": (
        "ema_decay",
        float,
        "validate and save an exponential moving average of the weights with this decay "
        "per step (e.g. 0.99; steadier validation on small datasets)",
    ),
    "--val-crop-px": ("val_crop_px", int, "validate on centre crops of this size (faster)"),
    "--val-every": ("val_every", int, "validate every N epochs (and after the last)"),
    "--class-balance": (
        "class_balance",
        str,
        "none (the paper's), loss (focal loss weighted by inverse class frequency) or "
        "sampler (classes drawn equally often)",
    ),
    "--stain-jitter": (
        "stain_jitter",
        float,
        "HED stain augmentation strength s: each stain's density scaled by up to 1 +- s "
        "and shifted by up to s/2 (0: off)",
    ),
    "--decision": (
        "decision",
        str,
        "argmax (the paper's) or validation: the benign/malignant threshold that balances "
        "the classes on the validation images, stored in the checkpoint and used wherever "
        "it classifies",
    ),
    "--patience": (
        "early_stopping_patience",
        int,
        "stop after this many validations without improvement (0: never)",
    ),
    "--seed": ("seed", int, "random seed"),
    "--workers": ("workers", int, "data-loading processes"),
    "--device": ("device", str, "auto, cpu, cuda, cuda:1, mps"),
}

#: TrainConfig field -> its flag (for the CLI's error messages).
TRAIN_OPTION_FLAGS = {
    **{name: flag for flag, (name, _, _) in _TRAIN_OPTIONS.items()},
    "split": "--split",
    "include_seen": "--include-seen",
}


def add_commands(commands) -> None:
    defaults = TrainConfig()
    train = commands.add_parser(
        "train",
        help="train SHISRCNet on BreaKHis or a folder of class sub-folders",
        description="Joint SHISRCNet training with the paper's defaults on patient-level splits.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("data_root", type=Path, metavar="DATA_ROOT")
    train.add_argument("--out", type=Path, required=True, metavar="DIR")
    for flag, (name, kind, text) in _TRAIN_OPTIONS.items():
        default = None if name == "fold" else getattr(defaults, name)  # no --fold: every fold
        metavar = {int: "N", float: "X"}.get(kind, "VALUE")
        if name == "init_checkpoints":  # repeatable
            train.add_argument(flag, dest=name, action="append", metavar="CHECKPOINT", help=text)
            continue
        if name in DEFAULT_ARCHITECTURE:  # unset: the --init checkpoint's, else the default
            default = argparse.SUPPRESS
            text = f"{text} (default: {DEFAULT_ARCHITECTURE[name]}, or the --init checkpoint's)"
        train.add_argument(flag, dest=name, type=kind, default=default, metavar=metavar, help=text)
    train.add_argument("--resume", action="store_true", help="continue from DIR/last*.safetensors")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a checkpoint: PSNR/SSIM vs bicubic, accuracy, figures",
        description="Evaluate a checkpoint on a split of DATA_ROOT (the split stored in the "
        "checkpoint) or on every image (--split all, for an external test set). Images of "
        "patients the model has seen are refused unless --include-seen.",
    )
    evaluate.add_argument("data_root", type=Path, metavar="DATA_ROOT")
    evaluate.add_argument("--checkpoint", required=True, help="a .safetensors file or 'default'")
    evaluate.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        default="test",
        help="a split stored in the checkpoint (default: test), or all images of DATA_ROOT",
    )
    evaluate.add_argument(
        "--include-seen",
        action="store_true",
        help="report on images of patients the model (or its --init parents) trained or "
        "validated on; the report is then labelled as including seen data",
    )
    evaluate.add_argument(
        "--out", type=Path, help="report folder (default: beside --json, else ./eval-SPLIT)"
    )
    evaluate.add_argument("--json", type=Path, help="also write the JSON report here")
    evaluate.add_argument(
        "--degradation",
        help="how LR is made from the images (default: the checkpoint's training degradation; "
        "bicubic: the paper's, for comparison with it)",
    )
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(handler=_run_evaluate)
    from .pyramid_command import add_command as add_pyramid_command

    add_pyramid_command(commands)


def _config_from_args(args) -> TrainConfig:
    return replace(
        TrainConfig(),
        **{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)},
    )


def _epoch_printer(out: Path):
    """Training events as a tqdm bar per epoch (and per validation: minutes on a CPU) and
    one line per epoch."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def bar(name: str, total: int, description: str, unit: str) -> tqdm:
        if name not in bars:
            bars[name] = tqdm(total=total, desc=description, unit=unit, leave=False)
        return bars[name]

    def close(name: str) -> None:
        if name in bars:
            bars.pop(name).close()

    def events(event) -> None:
        if event.kind == "batch":
            if event.batch == 1:
                close("train")
            shown = bar("train", event.batches_per_epoch, f"epoch {event.epoch + 1}", "batch")
            shown.n = event.batch
            shown.set_postfix_str(f"loss {event.losses['total']:.4f}", refresh=True)
        elif event.kind == "validation":
            close("train")
            shown = bar("val", event.batches_per_epoch, "validating", "image")
            shown.update(event.batch - shown.n)
        elif event.kind == "epoch":
            close("train")
            close("val")
            tqdm.write(f"epoch {event.epoch}, {_validation_line(event.metrics)} -> {out}")

    return events


def _validation_line(metrics: dict) -> str:
    parts = []
    if "train_total" in metrics:
        parts.append(f"loss {metrics['train_total']:.4f}")
    if "psnr" in metrics:
        parts.append(f"val PSNR {metrics['psnr']:.2f} dB (bicubic {metrics['psnr_bicubic']:.2f})")
    if "accuracy_image" in metrics:
        parts.append(
            f"val acc {metrics['accuracy_image']:.3f} "
            f"(balanced {metrics['balanced_accuracy_image']:.3f})"
        )
    if "decision_offset" in metrics:
        parts.append(f"malignant logit {metrics['decision_offset']:+.2f} (chosen on validation)")
    if "val_seconds" in metrics:
        parts.append(f"{metrics['seconds']:.0f} s ({metrics['val_seconds']:.0f} s validating)")
    elif "seconds" in metrics:
        parts.append(f"{metrics['seconds']:.0f} s, not validated")
    return ", ".join(parts)


def run_train(args) -> int:
    from .loop import Trainer, TrainingStopped

    config = _config_from_args(args)
    folds = [config.fold] if args.fold is not None or config.folds == 1 else range(config.folds)
    results = []
    for fold in folds:
        out = args.out / f"fold-{fold}" if config.folds > 1 else args.out
        trainer = Trainer(args.data_root, out, replace(config, fold=fold), _epoch_printer(out))
        if trainer.rank.is_main:
            _print_start(trainer, first=fold == folds[0], resume=args.resume)
        try:
            trainer.run(resume=args.resume)
        except (TrainingStopped, KeyboardInterrupt):
            trainer._save("last")
            print(f"stopped; resume with: shisrcnet train ... --out {out} --resume")
            return 130
        if not trainer.rank.is_main:
            continue
        _print_best(trainer, out)
        if config.folds > 1 and trainer.split.test.size:
            # Cross-validation's estimate: each fold's held-out patients, evaluated once.
            results.append(_evaluate_fold(trainer, out))
    if len(results) > 1:
        summary = _mean_std(results)
        (args.out / "cv-report.json").write_text(json.dumps(summary, indent=1))
        for key, (mean, std) in summary.items():
            print(f"{key}: {mean:.4f} +- {std:.4f} over {len(results)} folds")
    return 0


def _print_start(trainer, first: bool, resume: bool) -> None:
    if first:
        print(_pixel_size_line(trainer))
        for note in trainer.start_notes(resume):
            print(note)
    if trainer.moved_from_test:
        print(
            f"{trainer.moved_from_test} test image(s) belong to patients an --init checkpoint "
            "trained or validated on: moved to training, so the test split stays unseen"
        )


def _print_best(trainer, out: Path) -> None:
    """Validation only: the test split is for one final ``shisrcnet evaluate``."""
    best = trainer.counters["best_epoch"]
    rows = [row for row in trainer.history if row["epoch"] == best]
    if rows:
        print(f"best epoch {best}: {_validation_line(rows[0])} -> {out / 'best.safetensors'}")
    if trainer.config.folds == 1 and trainer.split.test.size:
        print(
            "held-out test, once the recipe is final: shisrcnet evaluate "
            f"{trainer.data_root} --checkpoint {out / 'best.safetensors'} --split test "
            f"--out {out / 'eval-test'}"
        )


def _pixel_size_line(trainer) -> str:
    """Where the recorded training pixel size comes from (slides are read at it x scale)."""
    if trainer.config.train_mpp is not None:
        return f"training pixel size: {trainer.hr_mpp} µm/px (--train-mpp)"
    if trainer.hr_mpp is not None:
        return (
            f"training pixel size: {trainer.hr_mpp:g} µm/px (BreaKHis calibration, "
            "docs/training.md; --train-mpp overrides)"
        )
    return (
        "training pixel size: none recorded (class folders or several magnifications); "
        "pass --train-mpp, or --magnification for BreaKHis, so slides are read at it"
    )


def _evaluate_fold(trainer, out: Path) -> dict:
    from ..model import load_checkpoint
    from .evaluate import evaluate_records
    from .evaluate_command import headline
    from .report import write_report

    model, info = load_checkpoint(out / "best.safetensors")
    indices = trainer.split.test
    metrics = evaluate_records(
        model,
        [trainer.records[i] for i in indices],
        trainer.labels[indices],
        trainer.class_names,
        replace(trainer.config, val_crop_px=None),
        trainer.device,
        with_figures=True,
        intervals=True,
        class_logit_offsets=info.class_logit_offsets,
    )
    report = write_report(
        metrics,
        out / "eval-test",
        trainer.class_names,
        trainer.config.scale,
        {"checkpoint": str(out / "best.safetensors"), "split": "test"},
    )
    print(f"fold {trainer.config.fold} test: {headline(report)} -> {out / 'eval-test'}")
    return report


def _mean_std(reports: list[dict]) -> dict:
    keys = [
        k for k, v in reports[0].items() if isinstance(v, float | int) and not isinstance(v, bool)
    ]
    return {
        k: (float(np.mean([r[k] for r in reports])), float(np.std([r[k] for r in reports])))
        for k in keys
    }


def _run_evaluate(args) -> int:
    from .evaluate_command import run_evaluate

    return run_evaluate(args)
