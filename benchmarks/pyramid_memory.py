"""Peak RSS of building an output pyramid: our chunk builder vs a dask graph; prints JSON.

Level 0 is an unwritten (fill-value) uint8 OME-Zarr image of SIDE x SIDE px in 512 px
chunks, so the run measures the per-chunk cost of building levels 1.. (reading, halving,
writing, and for dask the task graph), not pixel traffic. "chunks" is the engine's
PyramidBuilder finishing a pyramid no tile announced (as after a cluster run). Each
variant runs in a fresh process; the output side of a 40k px slide at x2 is 80k.

    python benchmarks/pyramid_memory.py [--sides 20000,80000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
import dask.array as da, numpy as np
from napari_shisrcnet.results.pyramid import pyramid_level_count
from napari_shisrcnet.results.store import ResultStore

def dask_halve(store, source, path):  # the earlier implementation: one graph per level
    lazy = da.from_zarr(source)
    _, height, width = lazy.shape
    lazy = da.pad(lazy, ((0, 0), (0, height % 2), (0, width % 2)), mode="edge")
    half = (da.coarsen(np.mean, lazy.astype(np.float32), {1: 2, 2: 2}) + 0.5).astype(np.uint8)
    target = store.group.create_array(path, shape=half.shape, chunks=source.chunks,
        dtype="uint8", fill_value=0, overwrite=True, config={"write_empty_chunks": True})
    da.store(half.rechunk(target.chunks), target, lock=False, scheduler="threads")
    return target

variant, side, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
store = ResultStore(folder)
store.open({"benchmark": side})
store.image_level0((side, side), 512)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
if variant == "dask":
    levels, source = pyramid_level_count((side, side)), store.group["0"]
    for level in range(1, levels):
        source = dask_halve(store, source, str(level))
else:
    builder = store.pyramid_builder()
    builder.finish()
    levels = len(builder.levels)
print(json.dumps({"variant": variant, "side_px": side, "levels": levels,
    "seconds": round(time.perf_counter() - started, 1), "rss_before_mb": round(before, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="20000,80000")
    parser.add_argument("--variants", default="chunks,dask")
    args = parser.parse_args()
    rows = []
    for side in map(int, args.sides.split(",")):
        for variant in args.variants.split(","):
            with tempfile.TemporaryDirectory() as folder:
                child = subprocess.run(
                    [sys.executable, "-c", CHILD, variant, str(side), f"{folder}/out.ome.zarr"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            rows.append(json.loads(child.stdout.splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)

    def peak(variant, side):
        return next(
            r["peak_rss_mb"] for r in rows if r["variant"] == variant and r["side_px"] == side
        )

    sides = sorted({r["side_px"] for r in rows})
    variants = args.variants.split(",")
    growth = {v: round(peak(v, sides[-1]) - peak(v, sides[0]), 1) for v in variants}
    print(
        json.dumps(
            {
                "benchmark": "output pyramid build, peak RSS",
                "results": rows,
                "peak_rss_growth_mb_smallest_to_largest": growth,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
