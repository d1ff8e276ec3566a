"""Does test-time augmentation (the D8 self-ensemble) pay for its 8x cost?

    python benchmarks/test_time_augmentation.py --sr default \
        --folds-work /tmp/cbwork --variants paper,width-0.5 > docs/tta-cpu.json

Geometric self-ensemble (Lim et al., EDSR+, CVPRW 2017; CAREamics and TIAToolbox offer it):
run the network on the 8 rotations and flips of its input, undo each on the output and
average. Both halves compare the plain network with the ensemble on the same inputs:

- SR (``--sr CHECKPOINT``): the real-pyramid evaluation of ``benchmarks/real_pyramid.py``
  (the bundled CMU-1 scan with a scanner-made level 1, 8 tissue regions of 256 LR px):
  PSNR gain over bicubic, plain and ensembled;
- classification (``--folds-work DIR``, a work folder of ``benchmarks/class_balance.py``
  whose folds are trained): each fold's held-out patients, scored by the fold's
  ``last.safetensors`` with tile logits averaged over the 8 views; balanced accuracy per
  fold, mean and sd, and the pooled ROC AUC.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile
import torch
from class_balance import VARIANTS, base_recipe
from sklearn.metrics import roc_auc_score

from napari_shisrcnet.io.scanner_pyramid import write_scanner_pyramid
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.model import load_checkpoint
from napari_shisrcnet.model.bundled import checkpoint_path
from napari_shisrcnet.samples import CMU_SMALL_REGION
from napari_shisrcnet.train.evaluate import evaluate_records
from napari_shisrcnet.train.loop import Trainer
from napari_shisrcnet.train.pyramid_evaluation import evaluate_regions, slide_regions, summarise

VIEWS = [(flip, turns) for flip in (False, True) for turns in range(4)]


def _view(image: torch.Tensor, flip: bool, turns: int) -> torch.Tensor:
    return torch.rot90(image.flip(-1) if flip else image, turns, (-2, -1))


def _unview(image: torch.Tensor, flip: bool, turns: int) -> torch.Tensor:
    image = torch.rot90(image, -turns, (-2, -1))
    return image.flip(-1) if flip else image


def ensembled_sr(forward):
    """``forward`` averaged over the 8 views, each output turned back."""
    return lambda lr: torch.stack([_unview(forward(_view(lr, *v)), *v) for v in VIEWS]).mean(0)


def ensembled_logits(forward):
    """A classifier's ``forward`` with its logits averaged over the 8 views of its input."""

    def averaged(image):
        output = forward(image)
        logits = torch.stack([forward(_view(image, *v)).logits for v in VIEWS]).mean(0)
        return output._replace(logits=logits)

    return averaged


def sr_comparison(checkpoint: str, region_px: int = 256, regions: int = 8) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        level0 = tifffile.imread(CMU_SMALL_REGION, key=0)
        path = write_scanner_pyramid(
            level0, Path(folder) / "c.tif", factor=2, quality=30, mpp=0.499
        )
        with open_slide(path) as slide:
            _, _, pixels = slide_regions(slide, 0, 2, region_px, regions, seed=0)
    model, _ = load_checkpoint(checkpoint_path(checkpoint))
    sr = model.sr_module if hasattr(model, "sr_module") else model
    result = {"plain": summarise(evaluate_regions(sr, pixels, 2))}
    sr.forward = ensembled_sr(sr.forward)
    result["d8"] = summarise(evaluate_regions(sr, pixels, 2))
    return {"checkpoint": checkpoint, **result}


def classification_comparison(work: Path, variant: str, folds: int = 5) -> dict:
    scores: dict = {"plain": [], "d8": []}
    pooled: dict = {"plain": [], "d8": []}
    labels = []
    for fold in range(folds):
        config = replace(base_recipe(folds=folds), fold=fold, **VARIANTS[variant])
        trainer = Trainer(work / "data", work / variant / f"fold-{fold}", config)
        records = [trainer.records[i] for i in trainer.split.test]
        labels.append(trainer.labels[trainer.split.test])
        for mode in scores:
            model, _ = load_checkpoint(work / variant / f"fold-{fold}" / "last.safetensors")
            if mode == "d8":
                model.forward = ensembled_logits(model.forward)
            metrics = evaluate_records(
                model, records, labels[-1], trainer.class_names,
                replace(trainer.config, val_crop_px=None), keep_tile_logits=True,
            )  # fmt: skip
            scores[mode].append(metrics["balanced_accuracy_image"])
            pooled[mode] += [
                torch.softmax(torch.from_numpy(t), 1).mean(0)[1].item()
                for t in metrics["_tile_logits"]
            ]
            print(variant, fold, mode, scores[mode][-1], file=sys.stderr)
    truth = np.concatenate(labels)
    return {
        mode: {
            "balanced_accuracy_per_fold": scores[mode],
            "balanced_accuracy_mean": float(np.mean(scores[mode])),
            "balanced_accuracy_sd": float(np.std(scores[mode])),
            "pooled_roc_auc": float(roc_auc_score(truth, pooled[mode])),
        }
        for mode in scores
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sr", help="SR checkpoint to compare on the real pyramid")
    parser.add_argument("--folds-work", type=Path, help="a trained class_balance.py --work")
    parser.add_argument("--variants", default="paper", help="comma-separated, with --folds-work")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    report: dict = {"benchmark": "test_time_augmentation", "views": len(VIEWS)}
    if args.sr:
        report["sr_real_pyramid"] = sr_comparison(args.sr)
    if args.folds_work:
        report["classification_folds"] = {
            name: classification_comparison(args.folds_work, name)
            for name in args.variants.split(",")
        }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
