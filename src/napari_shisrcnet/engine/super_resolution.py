"""Tiled super-resolution of a region of one pyramid level."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet

import numpy as np

from ..geometry import Region
from .inference import TileModel
from .runner import (
    Batch,
    CancelToken,
    ProgressCallback,
    make_batches,
    pending_batches,
    run_batches,
)
from .tiling import (
    CPU_SR_TILE_PX,
    DEFAULT_HALO_PX,
    GPU_SR_TILE_PX,
    Tile,
    TileGrid,
    read_window,
)

#: write(tile, sr_core) stores the upscaled core of ``tile`` (Y, X, 3 uint8).
CoreWriter = Callable[[Tile, np.ndarray], None]


def default_sr_tile_px(tile_model: TileModel) -> int:
    return GPU_SR_TILE_PX if tile_model.device.type == "cuda" else CPU_SR_TILE_PX


def default_batch_size(tile_model: TileModel, window_shape: tuple[int, int]) -> int:
    """Tiles per batch: from free device memory on CUDA, one tile elsewhere.

    On CPU one tile at a time is fastest (x2, 64 channels, 2 cores: 0.155 output MP/s at
    batch 1 vs 0.130 at batch 4, benchmarks/bench_tiling.py --batch-sweep): a tile's
    activations stay closer to the caches, and there is no launch overhead to amortise.
    """
    if tile_model.device.type != "cuda":
        return 1
    import torch

    torch.cuda.empty_cache()  # what torch holds from an earlier run counts as free here
    free_bytes, _ = torch.cuda.mem_get_info(tile_model.device)
    output_px = window_shape[0] * window_shape[1] * tile_model.scale**2
    # ~ 8 live 64-channel fp16 activations per output pixel (measured peak: see benchmarks/).
    per_tile = output_px * 64 * 2 * 8
    return int(np.clip(0.5 * free_bytes // max(per_tile, 1), 1, 64))


def super_resolve_region(
    image,
    region: Region,
    tile_model: TileModel,
    write_core: CoreWriter,
    *,
    tile_px: int | None = None,
    halo_px: int = DEFAULT_HALO_PX,
    batch_size: int | None = None,
    skip_batches: AbstractSet[int] = frozenset(),
    shard: tuple[int, int] | None = None,
    on_batch_written: Callable[[int], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TileGrid:
    """Super-resolve ``region`` of a (Y, X, 3) uint8 level, tile by tile.

    Every core is written exactly once through ``write_core``; batches listed in
    ``skip_batches`` (finished by an earlier run), or outside ``shard``, are not computed.
    ``tile_px`` and ``batch_size`` default to what suits the model's device.
    """
    grid = TileGrid(region, tile_px or default_sr_tile_px(tile_model), halo_px)
    tiles = grid.tiles_in_bands()  # cache-friendly reading order
    batch_size = batch_size or default_batch_size(tile_model, grid.window_shape)
    batches = pending_batches(make_batches(tiles, batch_size), skip_batches, shard)
    scale = tile_model.scale

    def write(batch: Batch, outputs: np.ndarray) -> None:
        for tile, output in zip(batch.tiles, outputs, strict=True):
            write_core(tile, output[tile.core_in_window(scale)])
        if on_batch_written is not None:
            on_batch_written(batch.index)

    run_batches(
        batches,
        lambda tile: read_window(image, tile.window),
        tile_model.start_super_resolve,
        write,
        stage="SR tiles",
        total_tiles=len(tiles),
        output_pixels_per_tile=grid.tile_px * grid.tile_px * scale * scale,
        progress=progress,
        cancel=cancel,
    )
    return grid


def array_core_writer(output: np.ndarray, region: Region, scale: int) -> CoreWriter:
    """Write cores into an in-memory (Y*scale, X*scale, 3) array covering ``region``."""

    def write(tile: Tile, core: np.ndarray) -> None:
        y0, x0 = (tile.core[0] - region.y) * scale, (tile.core[2] - region.x) * scale
        output[y0 : y0 + core.shape[0], x0 : x0 + core.shape[1]] = core

    return write
