"""Tiled SR throughput: compute-only ceiling vs our engine vs a naive loop vs MONAI; prints JSON.

All on the same model (the paper's x2 SRMFENet, 64 channels, 3 MFE blocks; weights do not
change the cost) and the same LR image, in one run:

(a) ceiling: batches of the engine's tiles (core + halo) already on the device, best
    precision (bf16/fp16 autocast + channels_last on CUDA; fp32 on CPU), optionally
    torch.compile; counted as core output pixels, the same work the engine delivers;
(b) engine: ``process_slide`` end to end, from a lazily read pyramidal JPEG TIFF to an
    OME-Zarr on disk (pyramid included);
(c) naive: one tile at a time, fp32, 16 px padding, numpy in and out (Real-ESRGAN style);
(d) MONAI ``sliding_window_inference`` (fp16 on CUDA, sw_batch 16), when MONAI is installed.
Also tile classification end to end (tiles/s) with a SHISRCNet of the same SR width.
Engine and ceiling use the engine's tile and batch sizes for the device unless given
(``--tile``, ``--batch``); (c) and (d) use their usual 256 px tiles (``--baseline-tile``).

``--compile`` compiles both the ceiling's model and the engine's (``--cuda-graphs`` adds
CUDA graphs to the engine's); ``--batch-sweep 1,4,16`` also measures ceiling and engine at
each batch size (for ``benchmarks/plot_batch_sweep.py``).

    python benchmarks/bench_tiling.py --device cpu --size 512
    python benchmarks/bench_tiling.py --device cuda --size 4096 --compile --batch-sweep 8,16,32,64
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_shisrcnet import api
from napari_shisrcnet.engine.inference import TileModel, resolve_device
from napari_shisrcnet.engine.super_resolution import (
    DEFAULT_HALO_PX,
    default_batch_size,
    default_sr_tile_px,
)
from napari_shisrcnet.engine.tiling import TileGrid, read_window
from napari_shisrcnet.geometry import Region
from napari_shisrcnet.io.synthetic import write_synthetic_slide
from napari_shisrcnet.model import SHISRCNet, SRMFENet


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling(model, device, tiles_uint8, tile_px, scale, repeats, compile_model):
    """Output MP/s of the model alone on device-resident batches of the engine's tiles."""
    batch = torch.from_numpy(tiles_uint8).to(device).permute(0, 3, 1, 2).float() / 255
    module = model.to(device).eval()
    dtype = None
    if device.type == "cuda":
        batch = batch.contiguous(memory_format=torch.channels_last)
        module = module.to(memory_format=torch.channels_last)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if compile_model:  # as the engine compiles (anchors.md's 536 MP/s used max-autotune)
        module = torch.compile(module, dynamic=False)
    context = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else torch.no_grad
    with torch.inference_mode(), context():
        module(batch)  # warm-up (and compile)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            module(batch)
        _sync(device)
    seconds = time.perf_counter() - start
    return repeats * len(batch) * (tile_px * scale) ** 2 / seconds / 1e6


def engine(slide_path, out_dir, tile_model, tile_px, halo_px, batch_size):
    start = time.perf_counter()
    result = api.process_slide(
        slide_path,
        out_dir,
        tile_model,
        classification=False,
        sr_tile_px=tile_px,
        halo_px=halo_px,
        batch_size=batch_size,
        overwrite=True,
    )
    seconds = time.perf_counter() - start
    height, width = result.summary["output_shape_yx"]
    return height * width / seconds / 1e6


def naive(model, device, image, tile_px, scale, pad_px=16):
    """One padded tile at a time, fp32, numpy in and out."""
    height, width = image.shape[:2]
    output = np.zeros((height * scale, width * scale, 3), np.uint8)
    module = model.to(device).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for y in range(0, height, tile_px):
            for x in range(0, width, tile_px):
                window = (
                    y - pad_px,
                    min(y + tile_px, height) + pad_px,
                    x - pad_px,
                    min(x + tile_px, width) + pad_px,
                )
                tile = torch.from_numpy(read_window(image, window)).to(device)
                sr = module(tile.permute(2, 0, 1)[None].float() / 255)[0].clamp(0, 1)
                sr = (sr * 255).round().byte().permute(1, 2, 0).cpu().numpy()
                core = sr[pad_px * scale : -pad_px * scale, pad_px * scale : -pad_px * scale]
                output[
                    y * scale : y * scale + core.shape[0], x * scale : x * scale + core.shape[1]
                ] = core
    _sync(device)
    return height * width * scale * scale / (time.perf_counter() - start) / 1e6


def monai(model, device, image, tile_px, scale):
    try:
        from monai.inferers import sliding_window_inference
    except ImportError:
        return None
    module = model.to(device).eval()
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(device) / 255
    dtype = torch.float16 if device.type == "cuda" else None
    start = time.perf_counter()
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=dtype, enabled=dtype is not None),
    ):
        sliding_window_inference(tensor, (tile_px, tile_px), 16, module, overlap=0.125)
    _sync(device)
    return image.shape[0] * image.shape[1] * scale * scale / (time.perf_counter() - start) / 1e6


def classification(slide_path, device, channels, batch_size):
    model = TileModel(
        SHISRCNet(scale=2, channels=channels, width=0.25),
        device,
        class_names=("benign", "malignant"),
        identity="bench",
    )
    start = time.perf_counter()
    result = api.classify_tiles(
        slide_path, model, tile_px=192, batch_size=batch_size, min_tissue_fraction=0.0
    )  # every tile: a throughput measure
    return int(result.tissue.sum()) / (time.perf_counter() - start)


def sweep_point(args, device, model, speed, image, grid, slide_path, workdir, size) -> dict:
    batch = np.stack([read_window(image, t.window) for t in grid.tiles()[:size]])
    ceiling_mpps = ceiling(
        SRMFENet(scale=args.scale), device, batch, args.tile, args.scale, args.repeats, args.compile
    )
    tile_model = TileModel(model, device, identity="bench", **speed)
    engine_mpps = engine(slide_path, workdir / "out", tile_model, args.tile, args.halo, size)
    return {
        "batch_size": size,
        "ceiling_mpps": ceiling_mpps,
        "engine_mpps": engine_mpps,
        "engine_vs_ceiling": engine_mpps / ceiling_mpps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--size", type=int, default=512, help="LR image side (a multiple of the tile)"
    )
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--tile", type=int, help="engine tile (default: the device's)")
    parser.add_argument("--baseline-tile", type=int, default=256, help="naive and MONAI tile")
    parser.add_argument("--halo", type=int, default=DEFAULT_HALO_PX)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--batch-sweep", default="", help="comma-separated batch sizes")
    parser.add_argument("--skip-classification", action="store_true")
    args = parser.parse_args()

    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = SRMFENet(scale=args.scale)
    speed = {"compile": args.compile, "cuda_graphs": args.cuda_graphs}
    tile_model = TileModel(model, device, identity="bench", **speed)
    args.tile = args.tile or default_sr_tile_px(tile_model)
    if args.size % args.tile:
        parser.error(
            "--size must be a multiple of the tile, so ceiling and engine do the same work"
        )
    workdir = Path(tempfile.mkdtemp(prefix="shisrcnet-bench-"))
    slide_path = write_synthetic_slide(workdir / "slide.tif", (args.size, args.size), mpp=0.5)
    image = np.asarray(api.open_slide(slide_path).levels[0])
    grid = TileGrid(Region.whole(image.shape[:2]), args.tile, args.halo)
    batch_size = args.batch or default_batch_size(tile_model, grid.window_shape)
    tiles = np.stack([read_window(image, t.window) for t in grid.tiles()[:batch_size]])

    results = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "lr_side_px": args.size,
        "scale": args.scale,
        "tile_px": args.tile,
        "halo_px": args.halo,
        "baseline_tile_px": args.baseline_tile,
        "batch_size": batch_size,
        "compiled": args.compile,
        "cuda_graphs": args.cuda_graphs,
    }
    results["ceiling_mpps"] = ceiling(
        SRMFENet(scale=args.scale), device, tiles, args.tile, args.scale, args.repeats, args.compile
    )
    results["engine_mpps"] = engine(
        slide_path, workdir / "out", tile_model, args.tile, args.halo, batch_size
    )
    results["naive_mpps"] = naive(model, device, image, args.baseline_tile, args.scale)
    results["monai_mpps"] = monai(model, device, image, args.baseline_tile, args.scale)
    results["engine_vs_ceiling"] = results["engine_mpps"] / results["ceiling_mpps"]
    results["engine_vs_naive"] = results["engine_mpps"] / results["naive_mpps"]
    results["engine_vs_monai"] = (
        results["engine_mpps"] / results["monai_mpps"] if results["monai_mpps"] else None
    )
    sweep = []
    for size in [int(b) for b in args.batch_sweep.split(",") if b]:
        try:
            row = sweep_point(args, device, model, speed, image, grid, slide_path, workdir, size)
        except torch.OutOfMemoryError:  # a sweep past the device's memory: note it, go on
            row = {"batch_size": size, "ceiling_mpps": None, "engine_mpps": None}
            if device.type == "cuda":
                torch.cuda.empty_cache()
        sweep.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(sweep[-1]), file=sys.stderr)
    if sweep:
        results["batch_sweep"] = sweep
    if not args.skip_classification:
        results["classification_tiles_per_s"] = classification(slide_path, device, 64, None)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        results["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}, indent=1
        )
    )


if __name__ == "__main__":
    main()
