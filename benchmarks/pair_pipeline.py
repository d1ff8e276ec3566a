"""Training-pair throughput (decode, crop, augment, degrade) next to training steps/s.

    python benchmarks/pair_pipeline.py --data ../shared/data/breakhis \
        > docs/pair-pipeline-cpu.json

For each degradation: HR-crop pairs per second from ``PairDataset`` (the training loader's
dataset) in one process, and through a torch DataLoader with every core as a worker, with
decoded images cached (``load_rgb``'s cache; the first pass is timed apart as "cold").
Next to it: optimiser steps per second of the joint model at batch 8 on this CPU, so the
ratio says whether the loader can keep the model fed (pairs/s / (8 x steps/s) > 1).
Without --data, 700 x 460 generated H&E images stand in for BreaKHis.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import torch
from torch.utils.data import DataLoader

from napari_shisrcnet.data.breakhis import index_dataset
from napari_shisrcnet.data.degradations import DEGRADATIONS, degradation
from napari_shisrcnet.data.pairs import PairDataset, load_rgb
from napari_shisrcnet.host import available_cores
from napari_shisrcnet.io.synthetic import synthetic_he_tile
from napari_shisrcnet.model import SHISRCNetLoss
from napari_shisrcnet.train.build import build_model
from napari_shisrcnet.train.config import TrainConfig


def image_paths(data: Path | None, count: int) -> list[Path]:
    if data is not None:
        return [r.path for r in index_dataset(data)][:count]
    folder = Path(tempfile.mkdtemp())
    paths = []
    for index in range(count):
        paths.append(folder / f"image-{index}.png")
        iio.imwrite(paths[-1], synthetic_he_tile(index * 700, 0, 460, 700, seed=index % 7))
    return paths


def pairs_per_second(dataset: PairDataset, workers: int, samples: int) -> float:
    if workers == 0:
        started = time.perf_counter()
        for index in range(samples):
            dataset[index % len(dataset)]
        return samples / (time.perf_counter() - started)
    loader = DataLoader(dataset, batch_size=8, num_workers=workers, persistent_workers=True)
    batches = iter(loader)
    next(batches)  # workers started and warm
    started, done = time.perf_counter(), 0
    for lr, _, _ in batches:
        done += len(lr)
        if done >= samples:
            break
    return done / (time.perf_counter() - started)


def training_steps_per_second(crop_px: int, steps: int) -> float:
    config = TrainConfig(hr_crop_px=crop_px, sr_channels=32, classifier_width=0.25, device="cpu")
    model = build_model(config, 2).train()
    loss = SHISRCNetLoss(config.loss)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    hr = torch.rand(8, 3, crop_px, crop_px)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    labels = torch.randint(0, 2, (8,))
    times = []
    for _ in range(steps + 1):  # the first step is a warm-up
        started = time.perf_counter()
        optimiser.zero_grad()
        loss(model(lr, hr), hr, labels).total.backward()
        optimiser.step()
        times.append(time.perf_counter() - started)
    return 1 / (sum(times[1:]) / steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="BreaKHis folder (default: generated images)")
    parser.add_argument("--crop-px", type=int, default=384)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    paths = image_paths(args.data, 48)
    workers = available_cores()
    report: dict = {"cpus": workers, "hr_crop_px": args.crop_px, "images": len(paths)}
    load_rgb.cache_clear()
    started = time.perf_counter()
    for path in paths:
        load_rgb(path)
    report["decode_images_per_s"] = round(len(paths) / (time.perf_counter() - started), 1)
    report["pairs_per_s"] = {}
    for name in DEGRADATIONS:
        dataset = PairDataset(
            paths, [0] * len(paths), 2, args.crop_px, degradation=degradation(name)
        )
        report["pairs_per_s"][name] = {
            "1 process (cached)": round(pairs_per_second(dataset, 0, args.samples), 1),
            f"{workers} workers": round(pairs_per_second(dataset, workers, args.samples), 1),
        }
    baseline = report["pairs_per_s"]["bicubic"][f"{workers} workers"]
    for rates in report["pairs_per_s"].values():
        rates["ratio_to_bicubic"] = round(rates[f"{workers} workers"] / baseline, 3)
    steps = training_steps_per_second(args.crop_px, args.steps)
    report["train_steps_per_s_batch_8_bundled_widths"] = round(steps, 4)
    report["pairs_needed_per_s"] = round(8 * steps, 2)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
