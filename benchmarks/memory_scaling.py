"""Peak host memory of whole-slide processing vs slide size; prints JSON.

For each side (default 5k, 20k, 40k px) a synthetic JPEG TIFF is written (pyramidal, or
with ``--layout single-level`` level 0 alone), then a fresh process per run processes its
whole level 0 into an OME-Zarr and reports its peak RSS. Flat peak RSS across sizes shows
memory is bounded by the tiles in flight, not the slide.

Modes (``--modes``):
- ``sr``: x2 SR with the bicubic model, no classification (the pyramid grows behind it);
- ``no-sr``: what ``shisrcnet predict --no-sr`` does: tissue detection, tile classification
  (192 px tiles, as the bundled model) and the overview image. The classifier, like the
  bicubic SR model, keeps a network's activations and time out of the figures:
  ``--model mean-colour`` (default) is bicubic x2 then a linear layer on the tile's mean
  colour; ``--model tiny`` writes the test suite's untrained tiny SHISRCNet (about 4
  tiles/s on 2 cores), ``--model default`` uses the bundled model (1.5 tiles/s): both for
  small slides only.

``--variants trim,no-trim`` also runs each size with the engine's periodic
``malloc_trim`` switched off (the baseline for host.py), and every run
reports the time spent trimming.

    python benchmarks/memory_scaling.py [--sides 5000,20000,40000] [--variants trim,no-trim]
    python benchmarks/memory_scaling.py --layout single-level --modes no-sr,sr
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from types import SimpleNamespace
import torch
import napari_shisrcnet.api as api
from napari_shisrcnet import host as host_memory
from napari_shisrcnet.engine.inference import TileModel
from napari_shisrcnet.model.srmfenet import BicubicSR
slide, out, level, variant, mode, model = sys.argv[1:7]
trim_calls, trim_seconds = 0, 0.0
def timed_trim(pad, _trim=host_memory._MALLOC_TRIM):
    global trim_calls, trim_seconds
    started = time.perf_counter()
    _trim(pad)
    trim_calls, trim_seconds = trim_calls + 1, trim_seconds + time.perf_counter() - started
host_memory._MALLOC_TRIM = timed_trim if variant == "trim" else None
class MeanColour(torch.nn.Module):  # bicubic x2, then a linear layer on the mean colour
    scale = 2
    def __init__(self):
        super().__init__()
        self.sr_module, self.classifier = BicubicSR(2), torch.nn.Linear(3, 2)
    def forward(self, lr):
        return SimpleNamespace(logits_sr=self.classifier(self.sr_module(lr).mean((2, 3))))
if model == "mean-colour":
    torch.manual_seed(0)
    model = TileModel(MeanColour(), "cpu", class_names=("benign", "malignant"),
                      identity="mean-colour", training_tile_px=192)
rss_after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
if mode == "sr":
    result = api.process_slide(slide, out, "bicubic", classification=False,
                               level=int(level), device="cpu")
else:
    result = api.process_slide(slide, out, model, super_resolution=False,
                               classification_tile_px=192, level=int(level), device="cpu")
seconds = time.perf_counter() - started
height, width = result.summary["output_shape_yx"]
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_after_import_mb": rss_after_import, "seconds": seconds,
                  "output_megapixels": height * width / 1e6,
                  "output_mpps": height * width / 1e6 / seconds,
                  "tiles": result.summary.get("tiles"),
                  "tissue_tiles": result.summary.get("tissue_tiles"),
                  "trim_calls": trim_calls, "trim_seconds": trim_seconds}))
"""


def tiny_checkpoint(workdir: Path) -> Path:
    """The test suite's tiny untrained x2 SHISRCNet, classifying 192 px tiles."""
    import torch

    from napari_shisrcnet.model import SHISRCNet, save_checkpoint

    torch.manual_seed(0)
    model = SHISRCNet(scale=2, channels=8, n_blocks=1, width=0.125, fpn_channels=64)
    return save_checkpoint(model, workdir / "tiny.safetensors", provenance={"hr_crop_px": 384})


def run_child(slide: Path, out: Path, args, variant: str, mode: str, model: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", CHILD, str(slide), str(out), str(args.level)]
    child = subprocess.run(
        [*command, variant, mode, model], capture_output=True, text=True, check=False
    )
    if child.returncode:
        sys.exit(f"{mode} run on {slide} failed:\n{child.stderr[-3000:]}")
    measured = json.loads(child.stdout.splitlines()[-1])
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in measured.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="5000,20000,40000")
    parser.add_argument("--level", type=int, default=0)
    parser.add_argument("--layout", choices=("pyramidal", "single-level"), default="pyramidal")
    parser.add_argument("--modes", default="sr", help="sr, no-sr or both (comma-separated)")
    parser.add_argument(
        "--model", default="mean-colour", help="no-sr classifier: mean-colour, tiny, default, path"
    )
    parser.add_argument("--variants", default="trim", help="trim, no-trim or both")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/shisrcnet-memory-bench"))
    parser.add_argument("--keep", action="store_true", help="keep slides and outputs")
    args = parser.parse_args()
    from napari_shisrcnet.io.synthetic import write_synthetic_slide

    args.workdir.mkdir(parents=True, exist_ok=True)
    model = str(tiny_checkpoint(args.workdir)) if args.model == "tiny" else args.model
    n_levels = 1 if args.layout == "single-level" else None
    rows = []
    for side in map(int, args.sides.split(",")):
        slide = args.workdir / f"synthetic-{args.layout}-{side}.tif"
        started = time.perf_counter()
        if not slide.exists():
            write_synthetic_slide(slide, (side, side), mpp=0.25, tile_px=512, n_levels=n_levels)
        generate_s = time.perf_counter() - started
        for mode in args.modes.split(","):
            for variant in args.variants.split(","):
                row = {"side_px": side, "layout": args.layout, "mode": mode, "variant": variant}
                row.update(level=args.level, slide_generation_s=round(generate_s, 1))
                out = args.workdir / f"out-{side}"
                row.update(run_child(slide, out, args, variant, mode, model))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
        if not args.keep:
            slide.unlink()
    peaks: dict[str, list[float]] = {}
    for row in rows:
        peaks.setdefault(f"{row['mode']}/{row['variant']}", []).append(row["peak_rss_mb"])
    print(
        json.dumps(
            {
                "benchmark": f"whole {args.layout} slide, level {args.level}, CPU; modes: "
                "sr = x2 SR, bicubic model; no-sr = tissue, classification, overview "
                f"(model {args.model}, 192 px tiles)",
                "results": rows,
                "peak_rss_ratio_largest_to_smallest": {
                    run: round(values[-1] / values[0], 3) for run, values in peaks.items()
                },
                "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
