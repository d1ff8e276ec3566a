"""Peak host memory of whole-slide SR vs slide size (bicubic model); prints JSON.

For each side (default 5k, 20k, 40k px) a synthetic pyramidal JPEG TIFF is written,
then a fresh process super-resolves its whole level 0 x2 into an OME-Zarr and reports
its peak RSS. Flat peak RSS across sizes shows memory is bounded by the tiles in flight.
``--variants trim,no-trim`` also runs each size with the engine's periodic
``malloc_trim`` switched off (the baseline for host.py), and every run
reports the time spent trimming.

    python benchmarks/memory_scaling.py [--sides 5000,20000,40000] [--variants trim,no-trim]
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
import napari_shisrcnet.api as api
from napari_shisrcnet import host as host_memory
trim_calls, trim_seconds = 0, 0.0
def timed_trim(pad, _trim=host_memory._MALLOC_TRIM):
    global trim_calls, trim_seconds
    started = time.perf_counter()
    _trim(pad)
    trim_calls, trim_seconds = trim_calls + 1, trim_seconds + time.perf_counter() - started
host_memory._MALLOC_TRIM = timed_trim if sys.argv[4] == "trim" else None
rss_after_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
result = api.process_slide(sys.argv[1], sys.argv[2], "bicubic", classification=False,
                           level=int(sys.argv[3]), device="cpu")
seconds = time.perf_counter() - started
height, width = result.summary["output_shape_yx"]
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_after_import_mb": rss_after_import, "seconds": seconds,
                  "output_megapixels": height * width / 1e6,
                  "output_mpps": height * width / 1e6 / seconds,
                  "trim_calls": trim_calls, "trim_seconds": trim_seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="5000,20000,40000")
    parser.add_argument("--level", type=int, default=0)
    parser.add_argument("--variants", default="trim", help="trim, no-trim or both")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/shisrcnet-memory-bench"))
    parser.add_argument("--keep", action="store_true", help="keep slides and outputs")
    args = parser.parse_args()
    from napari_shisrcnet.io.synthetic import write_synthetic_slide

    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for side in map(int, args.sides.split(",")):
        slide = args.workdir / f"synthetic-{side}.tif"
        started = time.perf_counter()
        if not slide.exists():
            write_synthetic_slide(slide, (side, side), mpp=0.25, tile_px=512)
        generate_s = time.perf_counter() - started
        for variant in args.variants.split(","):
            out = args.workdir / f"out-{side}"
            shutil.rmtree(out, ignore_errors=True)
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(slide), str(out), str(args.level), variant],
                capture_output=True,
                text=True,
                check=True,
            )
            row = {"side_px": side, "variant": variant, "level": args.level}
            row["slide_generation_s"] = round(generate_s, 1)
            measured = json.loads(child.stdout.splitlines()[-1])
            row.update({k: round(v, 3) for k, v in measured.items()})
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        if not args.keep:
            slide.unlink()
    by_variant = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row["peak_rss_mb"])
    print(
        json.dumps(
            {
                "benchmark": "whole-slide x2 SR, bicubic model, CPU",
                "results": rows,
                "peak_rss_ratio_largest_to_smallest": {
                    variant: round(peaks[-1] / peaks[0], 3) for variant, peaks in by_variant.items()
                },
                "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
