"""Which recipe makes the classifier fair to the smaller class, measured by patient folds.

    python benchmarks/class_balance.py --data ../shared/data/breakhis \
        > docs/class-balance-cpu.json

BreaKHis has two malignant images per benign one and the bundled classifier leans to
"malignant". This trains the bundled classifier's recipe (SKNet-26 + FPN at width 0.25 on
192 px HR crops, EMA 0.99; docs/dev/model-card-2026-11-27.md, stage 2) from scratch with
each variant, by 5-fold cross-validation over patients, and scores each fold's held-out
patients with the paper's argmax and with the decision threshold chosen on that fold's
validation patients (``--decision validation``). Variants: the paper's data as they come,
focal loss weighted by inverse class frequency (``--class-balance loss``), classes drawn
equally often (``sampler``), stronger HED stain augmentation (``--stain-jitter 0.2``), and
Macenko stain normalisation (torchstain; ``pip install torchstain``) of every image, train,
validation and test alike, to a tissue region of the bundled CMU-1 scan; a classifier
twice as wide (width 0.5) and the paper's full width (1.0); four times the training steps
(2,400); and crops with twice the field of view (384 px, 192 µm) at a quarter of the batch
and one crop per image and epoch (not four), so that each step sees as many pixels and the
learning-rate schedule is the same.

The bundled model's test patients are left out of every fold (they stay unseen: their one
evaluation is the model card's), so the folds run over the other patients. Each fold is
scored twice: with its checkpoint chosen on validation (``best``, what ``train`` keeps) and
with the fixed budget's last weights (``last``: free of selection on 2-3 validation
patients). Prints JSON: per variant, checkpoint and fold the chosen offset and the held-out
metrics under both rules, their mean and sd over folds, the metrics of all held-out images
pooled, and the pooled ROC AUC (threshold-free).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from napari_shisrcnet.data.split_record import SplitRecord
from napari_shisrcnet.model import load_checkpoint, read_checkpoint_info
from napari_shisrcnet.model.bundled import checkpoint_path
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.decision import decided_probabilities
from napari_shisrcnet.train.evaluate import classification_metrics, evaluate_records
from napari_shisrcnet.train.loop import Trainer

VARIANTS = {
    "paper": {},
    "loss": {"class_balance": "loss"},
    "sampler": {"class_balance": "sampler"},
    "stain-0.2": {"stain_jitter": 0.2},
    "macenko": {},  # the same recipe on stain-normalised copies of the images
    "width-0.5": {"classifier_width": 0.5},
    "width-1.0": {"classifier_width": 1.0},  # the paper's SKNet-26 width
    # Four times the steps (2,400: about the paper's 100 epochs of these images at batch
    # 16), the same schedule per epoch: the recipe's training loss still falls at 600.
    "steps-2400": {"max_steps": 2400},
    # Twice the field of view (192 µm crops at 0.5 µm/px); the same pixels per step and
    # the same steps per epoch (so the same learning-rate schedule) as the others.
    "fov-192um": {"hr_crop_px": 384, "batch_size": 4, "repeats": 1},
}
# The reference stain: a 512 px tissue region of the bundled CMU-1 scan (73 % tissue).
REFERENCE_REGION = (slice(1000, 1512), slice(800, 1312))
REPORTED = ("accuracy_image", "balanced_accuracy_image", "accuracy_patient")


def without_test_patients(data: Path, folder: Path) -> tuple[Path, list[str]]:
    """A copy of ``data`` (symbolic links) without the bundled model's test patients."""
    stored = SplitRecord.from_provenance(
        read_checkpoint_info(checkpoint_path("default")).provenance
    )
    test = stored.patients["test"] if stored else []
    for image in data.rglob("*.png"):
        target = folder / image.relative_to(data)
        if any(f"-{patient}" in image.name for patient in test) or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(image.resolve(), target)
    return folder, test


def stain_normalised(data: Path, folder: Path) -> Path:
    """A copy of ``data`` with every image Macenko-normalised to the reference region."""
    import imageio.v3 as iio
    import tifffile
    import torchstain

    from napari_shisrcnet.samples import CMU_SMALL_REGION

    normaliser = torchstain.normalizers.MacenkoNormalizer(backend="numpy")
    normaliser.fit(tifffile.imread(CMU_SMALL_REGION, key=0)[REFERENCE_REGION])
    for image in data.rglob("*.png"):
        target = folder / image.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        normalised, _, _ = normaliser.normalize(I=iio.imread(image)[..., :3], stains=False)
        iio.imwrite(target, np.asarray(normalised, np.uint8))
    return folder


def scores(probabilities, records, labels, class_names) -> dict:
    metrics = classification_metrics(probabilities, records, labels, class_names)
    recall = metrics["recall_per_class"]
    return {**{k: metrics[k] for k in REPORTED}, **{f"recall_{k}": v for k, v in recall.items()}}


RULES = ("argmax", "validation")
CHECKPOINTS = ("best", "last")  # best on validation, or the fixed budget's last weights


def held_out(trainer: Trainer, checkpoint: Path) -> dict:
    """The fold's test patients under both decision rules, and their logits to pool."""
    model, info = load_checkpoint(checkpoint)
    records = [trainer.records[i] for i in trainer.split.test]
    labels = trainer.labels[trainer.split.test]
    config = replace(trainer.config, val_crop_px=None)
    metrics = evaluate_records(
        model, records, labels, trainer.class_names, config, keep_tile_logits=True
    )
    offsets = {"argmax": (0.0, 0.0), "validation": info.class_logit_offsets or (0.0, 0.0)}
    probabilities = {
        rule: decided_probabilities(metrics["_tile_logits"], offsets[rule]) for rule in RULES
    }
    return {
        "offset": offsets["validation"][1],
        **{
            rule: scores(probabilities[rule], records, labels, trainer.class_names)
            for rule in RULES
        },
        "_probabilities": probabilities,
    }


def summary(rows: list[dict], pooled: dict, records, labels, class_names) -> dict:
    result = {}
    for rule in RULES:
        keys = rows[0][rule]
        result[rule] = {
            "mean": {k: float(np.mean([r[rule][k] for r in rows])) for k in keys},
            "sd": {k: float(np.std([r[rule][k] for r in rows])) for k in keys},
            "pooled": scores(np.concatenate(pooled[rule]), records, labels, class_names),
        }
    malignant = np.concatenate(pooled["argmax"])[:, 1]
    result["pooled_roc_auc"] = float(roc_auc_score(labels, malignant))
    return result


def run_variant(data: Path, out: Path, base: TrainConfig, overrides: dict, folds: int) -> dict:
    rows: dict = {name: [] for name in CHECKPOINTS}
    pooled: dict = {name: {rule: [] for rule in RULES} for name in CHECKPOINTS}
    records, labels = [], []
    started, trained = time.perf_counter(), False
    epoch_seconds = []  # median seconds per training epoch (with validation) of each fold
    training_seconds = []  # all of each fold's epochs (with validation), from its log
    for fold in range(folds):
        trainer = Trainer(data, out / f"fold-{fold}", replace(base, fold=fold, **overrides))
        if not (out / f"fold-{fold}" / "last.safetensors").exists():  # else: evaluate again
            with contextlib.redirect_stdout(sys.stderr):
                trainer.run()
            trained = True
        history = json.loads((out / f"fold-{fold}" / "metrics.json").read_text())
        epochs = {
            "best": max(history, key=lambda r: r.get("val_score", -1))["epoch"],
            "last": history[-1]["epoch"],
        }
        patients = sorted({trainer.records[i].patient for i in trainer.split.test})
        epoch_seconds.append(float(np.median([r["seconds"] for r in history])))
        training_seconds.append(round(sum(r["seconds"] for r in history), 1))
        for name in CHECKPOINTS:
            row = held_out(trainer, out / f"fold-{fold}" / f"{name}.safetensors")
            for rule, probabilities in row.pop("_probabilities").items():
                pooled[name][rule].append(probabilities)
            row.update(epoch=epochs[name], test_patients=patients)
            rows[name].append(row)
            print(f"{out.name} fold {fold} {name}: {json.dumps(row)}", file=sys.stderr)
        records += [trainer.records[i] for i in trainer.split.test]
        labels.append(trainer.labels[trainer.split.test])
    labels = np.concatenate(labels)
    return {
        # Training and evaluation, or evaluation alone of folds trained before (--work).
        "seconds" if trained else "seconds_evaluating": round(time.perf_counter() - started, 1),
        # From the folds' own logs, so also known for folds trained before (--work); the
        # median keeps out epochs slowed by other jobs on the cores.
        "median_epoch_seconds_per_fold": epoch_seconds,
        "median_epoch_seconds": float(np.median(epoch_seconds)),
        "training_seconds_per_fold": training_seconds,
        **{
            name: {
                "folds": rows[name],
                **summary(rows[name], pooled[name], records, labels, trainer.class_names),
            }
            for name in CHECKPOINTS
        },
    }


def paired(variants: dict) -> dict:
    """Per variant: its balanced accuracy minus the first variant's on the same folds (the
    folds' patients are the same, so the difference is freer of which patients a fold got)."""
    first = next(iter(variants.values()))
    return {
        name: {
            f"{checkpoint}/{rule}": _difference(
                variant[checkpoint]["folds"], first[checkpoint]["folds"], rule
            )
            for checkpoint in CHECKPOINTS
            for rule in RULES
        }
        for name, variant in variants.items()
    }


def _difference(folds: list[dict], first_folds: list[dict], rule: str) -> dict:
    key = "balanced_accuracy_image"
    differences = np.array(
        [row[rule][key] - base[rule][key] for row, base in zip(folds, first_folds, strict=True)]
    )
    return {
        "mean": float(differences.mean()),
        "sd": float(differences.std()),
        "folds_better": int((differences > 0).sum()),
        "folds_worse": int((differences < 0).sum()),
    }


def base_recipe(steps: int = 600, folds: int = 5) -> TrainConfig:
    """The bundled classifier's recipe, trained from scratch on each fold."""
    return TrainConfig(
        stage="classifier",
        classes="binary",
        magnification=100,
        classifier_width=0.25,
        hr_crop_px=192,
        batch_size=16,
        repeats=4,
        lr=1e-3,
        lr_decay_every_epochs=5,
        ema_decay=0.99,
        epochs=10_000,
        max_steps=steps,
        early_stopping_patience=None,
        folds=folds,
        decision="validation",
        seed=0,
        device="cpu",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--work",
        type=Path,
        help="work folder (default: a new temporary one); folds already trained there are "
        "evaluated again, not retrained",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    work = args.work or Path(tempfile.mkdtemp())
    data, excluded = without_test_patients(args.data.resolve(), work / "data")
    base = base_recipe(args.steps, args.folds)
    results = {
        "benchmark": "class_balance",
        "recipe": {
            k: v for k, v in base.to_dict().items() if k not in ("loss", "init_checkpoints")
        },
        "excluded_test_patients": excluded,
        "torch_threads": torch.get_num_threads(),
        "variants": {},
    }
    for name in args.variants.split(","):
        source = data
        if name == "macenko":
            source = work / "macenko-data"
            if not source.exists():
                stain_normalised(data, source)
        results["variants"][name] = run_variant(
            source, work / name, base, VARIANTS[name], args.folds
        )
    results["paired_vs_first"] = paired(results["variants"])
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
