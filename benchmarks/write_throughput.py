"""Output megapixels per second the engine's result writing sustains, no model; prints JSON.

The host side after the network: SR tiles -> compressed OME-Zarr chunks -> pyramid. A
GPU computes the x2 network at 250-540 output MP/s (anchors.md), so this side must keep
up for the engine to reach 70 % of that. Measured with the engine's own code (batch
runner, ``write_rgb_tile``, ResultStore) on realistic content (bicubic x2 of a real IHC or
H&E image, which compresses like SR output), without reading or a model, in one run:

- before: 512 px chunks (256 px tiles at x2), the (y, x, 3) tile handed to zarr as a
  transposed view, into level 0 as zarr reopens it (checking every chunk for emptiness),
  one writer thread (the engine until this benchmark);
- planar: the same, the tile copied to a contiguous (3, y, x) block first;
- 1024 px chunks (the GPU's 512 px tiles), planar, 2 writer threads;
  these three build the pyramid after the last tile;
- streaming: 1024 px chunks, planar, 1, 2 and 4 writer threads, the pyramid built behind
  the tiles as their chunks are written (the engine now), finished after the last tile.

    python benchmarks/write_throughput.py [--side 16384] [--image SVS] [--repeats 2]
    python benchmarks/write_throughput.py --chunk-costs   # zarr's cost per chunk write

``--chunk-costs`` instead times single chunk writes (ms per chunk) for 256, 512 and 1024 px
chunks: into an array as created (empty-chunk check off) or as zarr reopens it (check on),
handed a planar copy made per write (3, y, x) or a transposed (y, x, 3) view.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from skimage import data, transform

from napari_shisrcnet.engine.runner import make_batches, run_batches
from napari_shisrcnet.engine.tiling import TileGrid
from napari_shisrcnet.geometry import Region, physical_grid
from napari_shisrcnet.results.store import ResultStore, write_rgb_tile


def sr_like_tiles(image_path: str | None, chunk_px: int, count: int = 4) -> list[np.ndarray]:
    """Distinct (chunk, chunk, 3) uint8 tiles of bicubic-x2 tissue (compresses like SR output)."""
    if image_path:
        import tifffile

        source = tifffile.imread(image_path)[:1024, :1024, :3]
    else:
        source = data.immunohistochemistry()
    side = int(np.sqrt(count)) * chunk_px // 2
    upscaled = transform.rescale(
        source[:side, :side], 2, order=3, channel_axis=2, preserve_range=True
    )
    upscaled = np.clip(upscaled + 0.5, 0, 255).astype(np.uint8)
    step = chunk_px
    return [
        np.ascontiguousarray(upscaled[y : y + step, x : x + step])
        for y in range(0, upscaled.shape[0] - step + 1, step)
        for x in range(0, upscaled.shape[1] - step + 1, step)
    ]


def write_result(folder: Path, side: int, tiles, writer_threads: int, planar: bool, streaming):
    """Write a side x side result through the engine's runner and store; return timings."""
    chunk_px = tiles[0].shape[0]
    store = ResultStore(folder / "bench.ome.zarr")
    store.open({"benchmark": side})
    level0 = store.image_level0((side, side), chunk_px)
    reopened = store.group["0"]  # zarr's default: checks every chunk for emptiness first
    pyramid = store.pyramid_builder() if streaming else None

    def write_image_tile(y, x, pixels):
        if planar:
            write_rgb_tile(level0, y, x, pixels)
        else:  # the engine's write before: a transposed view, into the array as reopened
            reopened[:, y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels.transpose(
                2, 0, 1
            )
        if pyramid is not None:
            pyramid.level0_written(y, x)

    grid = TileGrid(Region(0, 0, side, side), chunk_px, halo_px=0)
    batches = make_batches(grid.tiles_in_bands(), 16)

    def write(batch, outputs):
        for tile, output in zip(batch.tiles, outputs, strict=True):
            write_image_tile(tile.core[0], tile.core[2], output)

    started = time.perf_counter()
    run_batches(
        batches,
        lambda tile: tiles[tile.index % len(tiles)],
        lambda outputs: outputs,  # no model: the host side alone
        write,
        writer_threads=writer_threads,
    )
    written = time.perf_counter()
    levels = store.finish_image(physical_grid(0.25), "bench", pyramid)
    finished = time.perf_counter()
    stored_mb = sum(f.stat().st_size for f in (folder / "bench.ome.zarr").rglob("*")) / 1e6
    return {
        "write_s": written - started,
        "pyramid_s": finished - written,
        "total_s": finished - started,
        "levels": levels,
        "stored_mb": round(stored_mb, 1),
    }


def chunk_costs(image_path: str | None, writes: int = 32, repeats: int = 3) -> dict:
    """Median ms per chunk write for each chunk size, array handle and tile layout."""
    costs = {}
    for chunk in (256, 512, 1024):
        tile = sr_like_tiles(image_path, chunk)[0]  # (y, x, 3)
        layouts = {  # how each write hands the tile to zarr
            "planar_copy": lambda t=tile: np.ascontiguousarray(t.transpose(2, 0, 1)),  # engine
            "transposed_view": lambda t=tile: t.transpose(2, 0, 1),  # the engine before
        }
        folder = Path(tempfile.mkdtemp(prefix="chunk-costs-"))
        try:
            group = zarr.open_group(folder / "a.zarr", mode="w", zarr_format=2)
            created = group.create_array(
                "0",
                shape=(3, chunk, chunk * writes),
                chunks=(3, chunk, chunk),
                dtype="uint8",
                fill_value=0,
                config={"write_empty_chunks": True},
            )
            handles = {"created": created, "reopened": group["0"]}
            for (handle, array), (layout, planar) in itertools.product(
                handles.items(), layouts.items()
            ):
                times = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    for i in range(writes):
                        array[:, :, i * chunk : (i + 1) * chunk] = planar()
                    times.append((time.perf_counter() - started) / writes * 1e3)
                costs[f"{chunk}px_{handle}_{layout}_ms"] = round(float(np.median(times)), 2)
        finally:
            shutil.rmtree(folder)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=16384, help="output side in px")
    parser.add_argument("--image", help="RGB TIFF/SVS to take content from (default: skimage IHC)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--threads", default="1,2,4", help="writer threads, streaming")
    parser.add_argument("--chunk-costs", action="store_true", help="time single chunk writes")
    args = parser.parse_args()
    if args.chunk_costs:
        costs = chunk_costs(args.image)
        print(
            json.dumps(
                {
                    "benchmark": "zarr chunk write cost",
                    "zarr": zarr.__version__,
                    "cpu_count": os.cpu_count(),
                    **costs,
                },
                indent=2,
            )
        )
        return
    tiles = {chunk: sr_like_tiles(args.image, chunk) for chunk in (512, 1024)}
    variants = [("before", 512, 1, False, False), ("planar", 512, 1, True, False)]
    variants += [("1024px-2-writers", 1024, 2, True, False)]
    variants += [
        (f"streaming-{n}-writers", 1024, int(n), True, True) for n in args.threads.split(",")
    ]
    megapixels = args.side**2 / 1e6
    results = []
    for name, chunk, threads, planar, streaming in variants:
        runs = []
        for _ in range(args.repeats):
            folder = Path(tempfile.mkdtemp(prefix="write-bench-"))
            try:
                runs.append(
                    write_result(folder, args.side, tiles[chunk], threads, planar, streaming)
                )
            finally:
                shutil.rmtree(folder)
        best = min(runs, key=lambda run: run["total_s"])
        results.append(
            {
                "variant": name,
                "chunk_px": chunk,
                "writer_threads": threads,
                "planar": planar,
                "pyramid_while_writing": streaming,
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in best.items()},
                "write_mpps": round(megapixels / best["write_s"], 1),
                "output_mpps": round(megapixels / best["total_s"], 1),
            }
        )
    baseline = results[0]["output_mpps"]
    for row in results:
        row["vs_before"] = round(row["output_mpps"] / baseline, 2)
    print(
        json.dumps(
            {
                "benchmark": "write_throughput",
                "side_px": args.side,
                "content": args.image or "skimage.data.immunohistochemistry, bicubic x2",
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "zarr": zarr.__version__,
                "numpy": np.__version__,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
