"""What one validation image costs, by model width and validation crop.

    python benchmarks/validation_cost.py > docs/validation-cost-cpu.json

Validates untrained joint models (the cost does not depend on the weights) on BreaKHis-sized
generated images (700 x 460 px) with whole images and with ``--val-crop-px`` centre crops,
and prints JSON: seconds per image (median of the images after a warm-up image), and the
ratio to the whole-image cost of the same model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import torch

from napari_shisrcnet.data.breakhis import ImageRecord
from napari_shisrcnet.host import available_cores
from napari_shisrcnet.io.synthetic import synthetic_he_tile
from napari_shisrcnet.train.build import build_model
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.evaluate import evaluate_records

WIDTHS = {  # name -> (SR channels, SR blocks, classifier width)
    "default (64 ch, width 1.0)": (64, 3, 1.0),
    "bundled (32 ch, width 0.25)": (32, 3, 0.25),
}


def seconds_per_image(config: TrainConfig, records: list[ImageRecord]) -> float:
    model = build_model(config, 2).eval()
    times = []

    def tick(done: int, total: int) -> None:
        times.append(time.perf_counter())

    started = time.perf_counter()
    evaluate_records(
        model, records, [0] * len(records), ("benign", "malignant"), config, progress=tick
    )
    steps = [b - a for a, b in zip([started, *times[:-1]], times, strict=True)][1:]
    return float(sorted(steps)[len(steps) // 2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="timed images (after a warm-up)")
    parser.add_argument("--crops", default="256,128", help="--val-crop-px values to time")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp())
    records = []
    for index in range(args.images + 1):
        path = folder / f"image-{index}.png"
        iio.imwrite(path, synthetic_he_tile(index * 500, 0, 460, 700, seed=index))
        records.append(ImageRecord(path, f"p{index}", "benign", "benign", 100))
    report: dict = {"cpu_threads": torch.get_num_threads(), "cpus": available_cores(), "models": {}}
    for name, (channels, blocks, width) in WIDTHS.items():
        base = TrainConfig(
            sr_channels=channels,
            sr_blocks=blocks,
            classifier_width=width,
            hr_crop_px=192,
            device="cpu",
        )
        whole = seconds_per_image(base, records)
        rows = {"whole image (700 x 460)": {"s_per_image": round(whole, 3), "ratio": 1.0}}
        for crop in (int(c) for c in args.crops.split(",")):
            seconds = seconds_per_image(replace(base, val_crop_px=crop), records)
            rows[f"--val-crop-px {crop}"] = {
                "s_per_image": round(seconds, 3),
                "ratio": round(seconds / whole, 3),
            }
        report["models"][name] = rows
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
