"""The ``shisrcnet`` command line."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from . import __version__


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


def _parameter_lines() -> list[str]:
    from .model import SUPPORTED_SCALES, SKNetFPNClassifier, SRMFENet

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
        for line in _parameter_lines():
            print(line)
    return 0


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
        "--models", action="store_true", help="also print the parameter counts of the networks"
    )
    info.set_defaults(handler=run_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
