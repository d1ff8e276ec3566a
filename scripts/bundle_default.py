"""Turn a trained checkpoint into the bundled default weights (fp16 safetensors).

    python scripts/bundle_default.py RUN_DIR/best.safetensors --note "CPU, 2 cores, 90 min"

Writes src/napari_shisrcnet/weights/shisrcnet-x2-binary.safetensors with the training
provenance plus the note, and prints its size. The model card (docs/model-card.md) must be
updated with the evaluation of exactly this file.
"""

import argparse
from pathlib import Path

import torch

from napari_shisrcnet.model import load_checkpoint, save_checkpoint
from napari_shisrcnet.model.bundled import BUNDLED_WEIGHTS

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint", type=Path)
parser.add_argument("--note", default="", help="hardware and time, for the provenance")
args = parser.parse_args()

model, info = load_checkpoint(args.checkpoint)
target = (
    Path(__file__).parents[1] / "src" / "napari_shisrcnet" / "weights" / BUNDLED_WEIGHTS["default"]
)
provenance = {**info.provenance, "bundled_from": args.checkpoint.name, "note": args.note}
save_checkpoint(
    model, target, class_names=info.class_names, provenance=provenance, weights_dtype=torch.float16
)
print(f"{target}: {target.stat().st_size / 1e6:.2f} MB")
