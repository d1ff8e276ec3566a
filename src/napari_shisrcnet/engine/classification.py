"""Tile classification: LR tile -> SR -> classifier -> class probabilities, tissue only."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

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
from .super_resolution import default_batch_size
from .tiling import TileGrid, read_window
from .tissue import MIN_TISSUE_FRACTION, tissue_fractions


@dataclass
class TileClassification:
    """A tile-resolution result over ``grid``: labels 0 = background, class i -> i + 1."""

    grid: TileGrid
    probabilities: np.ndarray  # (rows, columns, classes); NaN for background tiles
    tissue_fraction: np.ndarray  # (rows, columns)
    class_names: tuple[str, ...]

    @property
    def tissue(self) -> np.ndarray:
        return ~np.isnan(self.probabilities[..., 0])

    @property
    def label_map(self) -> np.ndarray:
        labels = np.zeros(self.grid.shape, np.uint8)
        labels[self.tissue] = np.argmax(self.probabilities[self.tissue], axis=-1) + 1
        return labels

    @property
    def confidence(self) -> np.ndarray:
        return np.where(self.tissue, np.nanmax(np.nan_to_num(self.probabilities, nan=0), -1), 0)

    def counts(self) -> dict[str, int]:
        labels = self.label_map
        counts = {"background": int((labels == 0).sum())}
        counts.update({n: int((labels == i + 1).sum()) for i, n in enumerate(self.class_names)})
        return counts


def default_classification_batch_size(tile_model: TileModel, tile_px: int) -> int:
    """Eight tiles on the CPU; on CUDA as many as free memory allows (a tile's SR output
    is computed before it is classified, so it is sized like an SR tile)."""
    if tile_model.device.type != "cuda":
        return 8
    return default_batch_size(tile_model, (tile_px, tile_px))


def classify_region(
    levels,
    level: int,
    region: Region,
    tile_model: TileModel,
    class_names: tuple[str, ...],
    *,
    tile_px: int,
    probabilities: np.ndarray | None = None,
    batch_size: int | None = None,
    min_tissue_fraction: float = MIN_TISSUE_FRACTION,
    skip_batches: AbstractSet[int] = frozenset(),
    shard: tuple[int, int] | None = None,
    on_batch_written: Callable[[Batch, np.ndarray], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TileClassification:
    """Classify every tissue tile of ``region`` on ``levels[level]``.

    A resumed run passes the ``probabilities`` restored from earlier batches and
    those batches' indices in ``skip_batches``; ``on_batch_written`` receives each
    new batch and its probabilities so the caller can persist them.
    """
    grid = TileGrid(region, tile_px, halo_px=0)
    fractions = tissue_fractions(levels, level, grid)
    tiles = [t for t in grid.tiles_in_bands() if fractions[t.row, t.column] >= min_tissue_fraction]
    if probabilities is None:
        probabilities = np.full((*grid.shape, len(class_names)), np.nan, np.float32)
    image = levels[level]

    def write(batch: Batch, outputs: np.ndarray) -> None:
        for tile, output in zip(batch.tiles, outputs, strict=True):
            probabilities[tile.row, tile.column] = output
        if on_batch_written is not None:
            on_batch_written(batch, outputs)

    batches = make_batches(
        tiles, batch_size or default_classification_batch_size(tile_model, tile_px)
    )
    run_batches(
        pending_batches(batches, skip_batches, shard),
        lambda tile: read_window(image, tile.window),
        tile_model.start_classify,
        write,
        stage="classified tiles",
        total_tiles=len(tiles),
        output_pixels_per_tile=tile_px * tile_px * tile_model.scale**2,
        progress=progress,
        cancel=cancel,
    )
    return TileClassification(grid, probabilities, fractions, class_names)
