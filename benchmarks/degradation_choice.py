"""Which degradation to train the SR module with, measured where it matters.

    python benchmarks/degradation_choice.py --data ../shared/data/breakhis --steps 600 \
        > docs/degradation-choice-cpu.json

Fine-tunes the bundled model's SR module with each degradation at an equal budget (same
steps, seed, crops, learning rate) and measures each result two ways: on a real scan's
pyramid (the bundled CMU-1 scan with a scanner-made level 1: box average, JPEG Q 30; what
``benchmarks/real_pyramid.py`` runs) and on the BreaKHis validation patients with the
paper's bicubic LR (never the test patients). The bundled model, not fine-tuned, is the
baseline row. Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import tifffile

from napari_shisrcnet.cli import main as cli
from napari_shisrcnet.io.scanner_pyramid import write_scanner_pyramid
from napari_shisrcnet.model import load_checkpoint
from napari_shisrcnet.model.bundled import checkpoint_path
from napari_shisrcnet.samples import CMU_SMALL_REGION
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.evaluate import evaluate_records
from napari_shisrcnet.train.loop import Trainer


def pyramid_gain(pyramid: Path, checkpoint: str, folder: Path) -> dict:
    out = folder / f"{Path(checkpoint).parent.name or 'bundled'}-pyramid.json"
    with contextlib.redirect_stdout(sys.stderr):
        cli(["evaluate-pyramid", str(pyramid), "--checkpoint", checkpoint, "--json", str(out)])
    summary = json.loads(out.read_text())["summary"]
    return {k: summary[k] for k in ("psnr_gain", "psnr_gain_ci95", "psnr_y_gain")}


def breakhis_gain(trainer: Trainer, checkpoint: str) -> dict:
    model, _ = load_checkpoint(checkpoint_path(checkpoint))
    sr = getattr(model, "sr_module", model)
    config = replace(trainer.config, degradation="bicubic", val_crop_px=None)
    records = [trainer.records[i] for i in trainer.split.val]
    metrics = evaluate_records(sr, records, trainer.labels[trainer.split.val], ("a", "b"), config)
    return {"psnr_gain": metrics["psnr"] - metrics["psnr_bicubic"], "images": len(records)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--degradations", default="bicubic,scanner,realistic")
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp())
    level0 = tifffile.imread(CMU_SMALL_REGION, key=0)
    pyramid = write_scanner_pyramid(level0, folder / "cmu-scanner.tif", mpp=0.499)
    base = TrainConfig(
        stage="sr",
        init_checkpoints=("default",),
        sr_channels=32,
        sr_blocks=3,
        hr_crop_px=192,
        batch_size=8,
        repeats=4,
        lr=args.lr,
        epochs=10_000,
        max_steps=args.steps,
        val_every=10_000,
        val_crop_px=256,
        early_stopping_patience=None,
        seed=0,
        device="cpu",
    )
    report: dict = {"steps": args.steps, "lr": args.lr, "rows": {}}
    for name in args.degradations.split(","):
        started = time.perf_counter()
        trainer = Trainer(args.data, folder / name, replace(base, degradation=name))
        trainer.run()
        checkpoint = str(folder / name / "best.safetensors")
        report["rows"][name] = {
            "real_pyramid": pyramid_gain(pyramid, checkpoint, folder),
            "breakhis_val_bicubic": breakhis_gain(trainer, checkpoint),
            "train_seconds": round(time.perf_counter() - started),
        }
        print(name, report["rows"][name], file=sys.stderr, flush=True)
    report["rows"]["bundled (not fine-tuned)"] = {
        "real_pyramid": pyramid_gain(pyramid, "default", folder),
        "breakhis_val_bicubic": breakhis_gain(trainer, "default"),
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
