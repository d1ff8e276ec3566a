"""Tile windows per second the engine's readers deliver from a pyramidal JPEG TIFF; prints JSON.

Compares, on the same synthetic slide in one run: (a) a dask array over tifffile's zarr
store, a task graph per window and no tile cache (how the engine read before), (b) the
slide's dask level (same, but over the decoded-tile cache), (c) the slide's RGBLevel read
directly (what the engine reads now); and decoding the whole level once as a reference.
Windows: SR (256 px cores + 32 px halo; 512 px cores, the CUDA default) and
classification (192 px, no halo), read by the engine's 4 reader threads in its tile order.

    python benchmarks/read_windows.py [--side 4096] [--file-tile-px 512]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask.array as da
import tifffile
import zarr

from napari_shisrcnet.engine.tiling import TileGrid, read_window
from napari_shisrcnet.geometry import Region
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.io.synthetic import write_synthetic_slide


def _before(path: Path, stack: contextlib.ExitStack):
    """How the engine read until the RGBLevel change: dask over tifffile's store, no cache."""
    tif = stack.enter_context(tifffile.TiffFile(path))
    node = zarr.open(tif.series[0].aszarr(), mode="r")
    return da.from_zarr(node if isinstance(node, zarr.Array) else node["0"])


def graph_ms_per_window(slide, tiles) -> float:
    """Single-threaded, warm cache: what a dask graph adds to reading one window."""
    sample = tiles[:200]
    seconds = {}
    for image in (slide.tile_sources[0], slide.tile_sources[0], slide.levels[0]):  # warm first
        started = time.perf_counter()
        for tile in sample:
            read_window(image, tile.window)
        seconds[type(image).__name__] = time.perf_counter() - started
    return (seconds["Array"] - seconds["RGBLevel"]) / len(sample) * 1e3


def windows_per_s(image, tiles, threads: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(lambda tile: read_window(image, tile.window), tiles):
            pass
    return len(tiles) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4096, help="slide side in px")
    parser.add_argument("--file-tile-px", type=int, default=512, help="the TIFF's own tile size")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slide.tif"
        write_synthetic_slide(path, (args.side, args.side), mpp=0.25, tile_px=args.file_tile_px)
        started = time.perf_counter()
        tifffile.imread(path)
        results = {"decode_whole_level_mpps": args.side**2 / 1e6 / (time.perf_counter() - started)}
        kinds = (("sr", 256, 32), ("sr_gpu_tiles", 512, 32), ("classification", 192, 0))
        for name, tile_px, halo_px in kinds:
            grid = TileGrid(Region(0, 0, args.side, args.side), tile_px, halo_px)
            tiles = grid.tiles_in_bands()  # the engine's reading order
            for method in ("before", "dask_level", "rgb_level"):
                # A fresh slide per method: a cold tile cache.
                with contextlib.ExitStack() as stack, open_slide(path) as slide:
                    image = (
                        _before(path, stack)
                        if method == "before"
                        else slide.levels[0]
                        if method == "dask_level"
                        else slide.tile_sources[0]
                    )
                    rate = windows_per_s(image, tiles, args.threads)
                    if method == "dask_level":
                        ms = graph_ms_per_window(slide, tiles)
                        results[f"{name}_dask_graph_ms_per_window"] = round(ms, 2)
                results[f"{name}_{method}_windows_per_s"] = round(rate, 1)
                results[f"{name}_{method}_core_mpps"] = round(rate * tile_px**2 / 1e6, 2)
            results[f"{name}_rgb_level_vs_before"] = round(
                results[f"{name}_rgb_level_windows_per_s"]
                / results[f"{name}_before_windows_per_s"],
                2,
            )
    results.update(vars(args))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
