"""SR on a scanner-made pyramid level of the bundled real scan, per checkpoint.

    python benchmarks/real_pyramid.py --checkpoints default > docs/real-pyramid-cpu.json
    python benchmarks/real_pyramid.py --factor 4 --region-px 128 --checkpoints default-x4 \
        > docs/real-pyramid-x4-cpu.json

``--figures DIR`` also writes each checkpoint's LR / bicubic / SR / level L figure (the
ones in docs/images/real-pyramid-x*.png) to DIR/NAME/.

The bundled CMU-1-Small-Region.svs (real Aperio H&E, JPEG Q 30) gets a level 1 made like
its own tiles (box average by 2, JPEG Q 30; ``io/scanner_pyramid.py``), then each
checkpoint runs ``shisrcnet evaluate-pyramid`` on it (8 tissue regions of 256 LR px,
seed 0). Prints JSON: each checkpoint's summary (mean PSNR/SSIM, RGB and Y, of SR and
bicubic; the PSNR gain and its 95 % bootstrap interval over regions).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import tifffile

from napari_shisrcnet.cli import main as cli
from napari_shisrcnet.io.scanner_pyramid import write_scanner_pyramid
from napari_shisrcnet.samples import CMU_SMALL_REGION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="default", help="comma-separated")
    parser.add_argument("--quality", type=int, default=30, help="JPEG quality of level 1")
    parser.add_argument("--factor", type=int, default=2, help="level 1 = level 0 / factor")
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--region-px", type=int, default=256, help="LR region side")
    parser.add_argument(
        "--figures", type=Path, help="write each checkpoint's comparison figure to DIR/NAME/"
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp())
    level0 = tifffile.imread(CMU_SMALL_REGION, key=0)
    pyramid = write_scanner_pyramid(
        level0, folder / "cmu-scanner.tif", factor=args.factor, quality=args.quality, mpp=0.499
    )
    report: dict = {
        "slide": f"{CMU_SMALL_REGION.name} + scanner-made level 1 "
        f"(box /{args.factor}, JPEG Q {args.quality})",
        "checkpoints": {},
    }
    for name in args.checkpoints.split(","):
        out = folder / f"{Path(name).stem}.json"
        command = ["evaluate-pyramid", str(pyramid), "--checkpoint", name, "--json", str(out)]
        command += ["--scale", str(args.factor), "--region-px", str(args.region_px)]
        if args.figures is not None:
            command += ["--out", str(args.figures / Path(name).stem)]
        with contextlib.redirect_stdout(sys.stderr):  # the table; stdout is the JSON
            if cli([*command, "--regions", str(args.regions)]) != 0:
                return 1
        report["checkpoints"][name] = json.loads(out.read_text())["summary"]
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
