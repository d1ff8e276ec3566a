"""Turn a trained checkpoint into the bundled default weights (fp16 safetensors).

    python scripts/bundle_default.py RUN_DIR/best.safetensors --name default-x2 --note "..."

Writes the weights file of the bundled model NAME (default-x2: shisrcnet-x2-binary,
default-x4: shisrcnet-x4-binary, in src/napari_shisrcnet/weights) with the training
provenance plus the note, and prints its size. The model card (docs/model-card.md) must be
updated with the evaluation of exactly this file.

A checkpoint from before splits were stored in checkpoints gets its split with
``--split-from DATA_ROOT``: rebuilt from its recorded seed and settings on the data it was
trained on (what ``evaluate`` did before), so ``evaluate`` can refuse its training patients.
Re-bundling the bundled file itself keeps its provenance and adds only what is asked.
"""

import argparse
from pathlib import Path

import torch

from napari_shisrcnet.data.breakhis import index_dataset, labels_for
from napari_shisrcnet.data.split_record import SplitRecord, data_fingerprint
from napari_shisrcnet.model import load_checkpoint, save_checkpoint
from napari_shisrcnet.model.bundled import BUNDLED_WEIGHTS
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.split_binding import make_split, split_kind


def rebuilt_split(provenance: dict, data_root: Path) -> dict:
    config = TrainConfig.from_dict(provenance["train_config"])
    records = index_dataset(data_root, config.magnification)
    labels = labels_for(records, config.classes)
    split = make_split(config, labels, [r.patient for r in records])
    fingerprint = data_fingerprint(records, data_root)
    return SplitRecord.of_training(records, split, split_kind(config), fingerprint).to_dict()


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint", type=Path)
parser.add_argument("--name", default="default-x2", choices=("default-x2", "default-x4"))
parser.add_argument("--note", help="hardware and time, for the provenance")
parser.add_argument("--split-from", type=Path, metavar="DATA_ROOT", help="see above")
args = parser.parse_args()

model, info = load_checkpoint(args.checkpoint)
target = (
    Path(__file__).parents[1] / "src" / "napari_shisrcnet" / "weights" / BUNDLED_WEIGHTS[args.name]
)
if info.scale != int(args.name[-1]):
    parser.error(f"{args.checkpoint} is an x{info.scale} model, not {args.name}")
provenance = dict(info.provenance)
if args.checkpoint.resolve() != target.resolve():
    provenance["bundled_from"] = args.checkpoint.name
if args.note is not None:
    provenance["note"] = args.note
if args.split_from is not None:
    provenance["split"] = rebuilt_split(provenance, args.split_from)
    provenance["split_note"] = (
        "rebuilt from the training seed and settings on the training data folder after "
        "training (scripts/bundle_default.py --split-from); its SR and classifier stages "
        "used the same seed, data and split settings, so the same patients"
    )
save_checkpoint(
    model, target, class_names=info.class_names, provenance=provenance, weights_dtype=torch.float16
)
print(f"{target}: {target.stat().st_size / 1e6:.2f} MB")
