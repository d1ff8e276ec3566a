"""MFE branch fusion at equal budget: the paper's MSF vs a learned selective fusion vs a
plain mean, SR module only, several seeds, on the validation patients (never test).

    python benchmarks/msf_fusion.py --data ../shared/data/breakhis --seeds 0,1,2 \
        --steps 400 > docs/msf-fusion-cpu.json

Prints JSON: per fusion and seed the validation PSNR / SSIM and their gain over bicubic,
and how much the fusion weights differ across branches (per channel, max - min, averaged
over blocks, channels and validation images; 0 = a plain mean).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_shisrcnet.data.pairs import degrade, load_rgb, to_tensor
from napari_shisrcnet.model import load_checkpoint
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.loop import Trainer


def branch_weight_spread(model, records, crop_px: int, scale: int) -> dict:
    """Max - min fusion weight across branches per channel, over validation crops."""
    spreads, lows, highs = [], [], []
    with torch.no_grad():
        for record in records:
            hr = to_tensor(load_rgb(record.path))[:, :crop_px, :crop_px]
            features = model.head(degrade(hr, scale)[None])
            for block in model.blocks:
                weights = block.fusion.branch_weights(block.branch_outputs(features))
                spreads.append(float((weights.amax(1) - weights.amin(1)).mean()))
                lows.append(float(weights.min()))
                highs.append(float(weights.max()))
                features = block(features)
    return {"spread": float(np.mean(spreads)), "min": min(lows), "max": max(highs)}


def run(data: Path, fusion: str, seed: int, args) -> dict:
    config = TrainConfig(
        stage="sr",
        sr_fusion=fusion,
        seed=seed,
        epochs=1000,
        max_steps=args.steps,
        batch_size=args.batch_size,
        hr_crop_px=args.hr_crop_px,
        sr_channels=args.channels,
        sr_blocks=args.blocks,
        val_crop_px=args.val_crop_px,
        early_stopping_patience=None,
        magnification=args.magnification,
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        trainer = Trainer(data, Path(out), config)
        metrics = trainer.run()
        model, _ = load_checkpoint(Path(out) / "best.safetensors")
        val = [trainer.records[i] for i in trainer.split.val][: args.spread_images]
        spread = branch_weight_spread(model.eval(), val, args.val_crop_px, config.scale)
    return {
        "fusion": fusion,
        "seed": seed,
        "psnr": metrics["psnr"],
        "psnr_gain_db": metrics["psnr"] - metrics["psnr_bicubic"],
        "ssim_gain": metrics["ssim"] - metrics["ssim_bicubic"],
        "val_images": metrics["n_images"],
        "weights": spread,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--fusions", default="paper,selective,mean")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--hr-crop-px", type=int, default=96)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--val-crop-px", type=int, default=192)
    parser.add_argument("--magnification", type=int, default=None)
    parser.add_argument("--spread-images", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    runs = []
    for seed in map(int, args.seeds.split(",")):
        for fusion in args.fusions.split(","):
            runs.append(run(args.data, fusion, seed, args))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    summary = {}
    for fusion in args.fusions.split(","):
        gains = [r["psnr_gain_db"] for r in runs if r["fusion"] == fusion]
        spreads = [r["weights"]["spread"] for r in runs if r["fusion"] == fusion]
        summary[fusion] = {
            "psnr_gain_db_mean": float(np.mean(gains)),
            "psnr_gain_db_sd": float(np.std(gains, ddof=1)) if len(gains) > 1 else None,
            "weight_spread_mean": float(np.mean(spreads)),
        }
    print(
        json.dumps(
            {"settings": vars(args) | {"data": str(args.data)}, "runs": runs, "summary": summary},
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
