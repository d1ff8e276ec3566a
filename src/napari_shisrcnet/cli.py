"""The ``shisrcnet`` command line."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .predict_cli import OPTION_FLAGS, add_predict, error_line


def _device_lines() -> list[str]:
    import torch

    lines = [f"cpu: {torch.get_num_threads()} threads"]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            lines.append(
                f"cuda:{index}: {properties.name}, {total / 2**30:.1f} GiB "
                f"({free / 2**30:.1f} GiB free)"
            )
    else:
        lines.append("cuda: not available")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        lines.append("mps: available")
    return lines


def _bundled_model_lines() -> list[str]:
    """One line per bundled model: what it is and what it was trained for."""
    from .model.bundled import installed_models
    from .model.checkpoint import read_checkpoint_info

    lines = ["bundled models (--model NAME; 'default' = default-x2, or --scale's):"]
    for name, path in installed_models().items():
        info = read_checkpoint_info(path)
        trained = info.provenance.get("train_config", {})
        mpp = info.provenance.get("hr_mpp")
        offsets = info.class_logit_offsets
        decision = "argmax" if offsets is None else f"logit offsets {offsets} (validation)"
        lines.append(
            f"  {name}: x{info.scale}, classes {', '.join(info.class_names)} ({decision}); "
            f"LR made by {trained.get('degradation', 'bicubic')}; trained at "
            f"{f'{mpp:g} µm/px' if mpp else 'an unrecorded pixel size'}; "
            f"{path.stat().st_size / 1e6:.1f} MB ({path.name})"
        )
    return lines


def _parameter_lines() -> list[str]:
    from .geometry import SUPPORTED_SCALES
    from .model import SKNetFPNClassifier, SRMFENet

    lines = []
    for scale in SUPPORTED_SCALES:
        count = sum(p.numel() for p in SRMFENet(scale=scale).parameters())
        lines.append(f"SRMFENet x{scale} (64 ch, 3 MFE blocks): {count:,} parameters")
    for width in (1.0, 0.25):
        count = sum(p.numel() for p in SKNetFPNClassifier(width=width).parameters())
        lines.append(f"SKNet-26 + FPN/CSF classifier, width {width}: {count:,} parameters")
    return lines


def run_info(args: argparse.Namespace) -> int:
    import numpy
    import torch

    print(f"napari-shisrcnet {__version__}")
    print(f"python {platform.python_version()} ({platform.platform()})")
    print(f"torch {torch.__version__}, numpy {numpy.__version__}")
    for line in _device_lines():
        print(line)
    if args.models:
        for line in [*_bundled_model_lines(), *_parameter_lines()]:
            print(line)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    summary = demo(args.out, args.input, args.model, args.device, args.synthetic)
    print(f"demo finished in {summary['seconds']} s; results in {Path(args.out).resolve()}:")
    for key, value in summary.items():
        if key.endswith(("_png", "_zarr", "_csv", "geojson", "json")):
            print(f"  {key}: {value}")
    if "tiles_per_class" in summary:
        print(f"  tiles per class: {summary['tiles_per_class']}")
    if args.open:
        from .napari.demo_viewer import open_demo

        open_demo(summary)
    return 0


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the main job on built-in defaults (no data or display needed)",
        description="Classify the tissue tiles of a real Aperio H&E slide shipped with the "
        "package (CMU-1-Small-Region.svs, CC0), or of --input, and super-resolve a region with "
        "the default model; write OME-Zarr results, figures and a JSON summary.",
    )
    demo.add_argument("--out", default="shisrcnet-demo", help="output folder")
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--input", help="a slide or image instead of the bundled slide")
    source.add_argument(
        "--synthetic", action="store_true", help="a generated H&E-like slide instead"
    )
    demo.add_argument("--model", default="default", help="'default', a checkpoint, or 'bicubic'")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--open", action="store_true", help="open the results in napari")
    demo.set_defaults(handler=run_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shisrcnet",
        description=(
            "Super-resolution and tile classification of low-resolution histopathology "
            "images (SHISRCNet, MICCAI 2023). Research use only, not for diagnosis."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="print versions, devices and GPU memory")
    info.add_argument(
        "--models",
        action="store_true",
        help="also list the bundled models and the networks' parameter counts",
    )
    info.set_defaults(handler=run_info)
    _add_demo(commands)
    add_predict(commands)
    from .train.commands import add_commands as add_training_commands

    add_training_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("shisrcnet: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, LookupError, OSError) as error:
        from .train.commands import TRAIN_OPTION_FLAGS

        print(error_line(error, {**TRAIN_OPTION_FLAGS, **OPTION_FLAGS}), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
