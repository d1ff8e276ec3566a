"""One slide's job in three phases: prepare the result, compute its tiles, finish it.

:func:`napari_shisrcnet.api.process_slide` runs the three in one process; the cluster
prepares on one worker, computes a shard of the batches on every worker, and finishes on
one. Each phase can be rerun: batches already written are skipped, so an interrupted job
resumes and ends bit-identical to an uninterrupted one.

- :meth:`SlideJob.prepare` resolves the settings (level, region, tile sizes), then creates
  the result or resumes the one there if it records the same signature, and fixes the
  batch sizes, so every process batches alike;
- :meth:`SlideJob.compute` super-resolves tiles into level 0 (the output pyramid grows
  behind them) and classifies tissue tiles, all batches or one shard of them;
- :meth:`SlideJob.finish` completes the pyramid and writes the NGFF metadata, labels,
  probabilities, tables and optional copies, and marks the result complete.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._version import __version__
from .classes import class_colors
from .engine.classification import (
    TileClassification,
    classify_region,
    default_classification_batch_size,
)
from .engine.coarse import coarse_bands, coarse_shape
from .engine.inference import TileModel
from .engine.runner import CancelToken, ProgressCallback
from .engine.super_resolution import default_batch_size, super_resolve_region
from .engine.tiling import READ_BAND_PX, Tile, TileGrid
from .geometry import Region
from .io.resampled import LevelView
from .io.slides import Slide
from .results import tables
from .results.lock import ResultLock
from .results.ome_tiff import write_ome_tiff
from .results.paths import ResultPaths
from .results.pyramid import PyramidBuilder
from .results.resume import ResumeState
from .results.store import ResultStore, write_rgb_tile
from .settings import SlideJobSettings, check_model, resolve, view_of

#: Overview pixels per classification tile side when SR is off.
OVERVIEW_PX_PER_TILE = 16


def _colours(names: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    return dict(zip(names, class_colors(names), strict=True))


@dataclass
class SlideResult:
    """Where one slide's results are, and what they say."""

    zarr_path: Path
    csv_path: Path | None = None
    geojson_path: Path | None = None
    ome_tiff_path: Path | None = None
    summary: dict = field(default_factory=dict)
    resumed_complete: bool = False


def job_signature(slide: Slide, model: TileModel, resolved: SlideJobSettings) -> dict:
    """What a result records to be resumed only by the same job: input, model, settings."""
    path = slide.metadata.path
    stat = path.stat() if path.exists() else None
    return {
        "input": str(path.resolve()) if stat else str(path),
        "input_bytes": stat.st_size if stat and path.is_file() else None,
        "input_mtime_ns": stat.st_mtime_ns if stat else None,
        "model": model.identity,
        "scale": model.scale,
        **resolved.signature(),
        "package_version": __version__,
        "tile_order": f"bands-{READ_BAND_PX}",  # batches are slices of this order (resume)
    }


class SlideJob:
    """One slide, one model, one result store, one set of settings (see the module)."""

    def __init__(
        self,
        slide: Slide,
        model: TileModel,
        store: ResultStore,
        settings: SlideJobSettings | None = None,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        lock: bool = False,
    ) -> None:
        self.slide, self.model, self.store = slide, model, store
        # One process writes the whole result: refuse a second run on it (a cluster's
        # workers share a result, and its client holds the lock instead).
        self.lock = ResultLock(store.path) if lock else None
        self.settings = settings or SlideJobSettings()
        check_model(self.settings, model)
        self.progress, self.cancel = progress, cancel
        self.resolved: SlideJobSettings | None = None
        self._pyramid: PyramidBuilder | None = None
        self._classified: TileClassification | None = None
        self._computed_all = False
        self._started = time.perf_counter()

    # -- prepare ------------------------------------------------------------------------
    def prepare(self) -> SlideJob:
        """Resolve the settings, create or resume the result, fix the batch sizes."""
        if self.resolved is not None:
            return self
        resolved = resolve(self.settings, self.slide, self.model, self.store.recorded())
        if self.lock is not None:
            self.lock.acquire()  # after every check: a refused job leaves nothing behind
        self.store.open(job_signature(self.slide, self.model, resolved))
        self.resolved = resolved
        resume = self._resume
        if resume.complete:
            return self
        if resolved.super_resolution:
            scale, region, tile_px = self.model.scale, self._region, self._sr_tile_px
            self.store.image_level0((region.height * scale, region.width * scale), tile_px * scale)
            window = TileGrid(region, tile_px, resolved.halo_px).window_shape
            # Defaults only when nothing is recorded: on CUDA they query free GPU memory.
            resume.remember(
                "sr_batch_size",
                lambda: resolved.batch_size or default_batch_size(self.model, window),
            )
        if resolved.classification:
            resume.remember(
                "classification_batch_size",
                lambda: (
                    resolved.batch_size
                    or default_classification_batch_size(self.model, self._cls_px)
                ),
            )
        return self

    @property
    def complete(self) -> bool:
        """The result was finished (by this job or an earlier run)."""
        return self.prepare()._resume.complete

    @property
    def _resolved(self) -> SlideJobSettings:
        """The resolved settings (:meth:`prepare` sets them)."""
        assert self.resolved is not None, "prepare() the job first"
        return self.resolved

    @property
    def _resume(self) -> ResumeState:
        """The result's resume state (:meth:`prepare` opens the result)."""
        resume = self.store.resume
        assert resume is not None, "prepare() the job first"
        return resume

    @property
    def _region(self) -> Region:
        region = self._resolved.region
        assert region is not None  # resolve() fills it in
        return region

    @property
    def _sr_tile_px(self) -> int:
        tile_px = self._resolved.sr_tile_px
        assert tile_px is not None  # resolve() fills it in when super-resolving
        return tile_px

    @property
    def _cls_px(self) -> int:
        tile_px = self._resolved.classification_tile_px
        assert tile_px is not None  # resolve() fills it in when classifying
        return tile_px

    # -- compute ------------------------------------------------------------------------
    def compute(self, shard: tuple[int, int] | None = None) -> None:
        """Compute the batches not written yet: all, or shard ``(k, n)``'s batches
        k, k + n, ... (another process then finishes)."""
        if self.complete:
            return
        if self._resolved.super_resolution:
            self._compute_sr(shard)
        if self._resolved.classification:
            self._classified = self._compute_classification(shard)
        self._computed_all = shard is None

    def _compute_sr(self, shard: tuple[int, int] | None) -> None:
        """SR tiles into level 0; the pyramid grows behind them (a shard's is built at
        finish, by the process that finishes)."""
        resume, scale, region = self._resume, self.model.scale, self._region
        level0 = self.store.image_level(0)
        if shard is None and self._pyramid is None:
            self._pyramid = self.store.pyramid_builder()
        pyramid = self._pyramid if shard is None else None

        def write_core(tile: Tile, core: np.ndarray) -> None:
            y0, x0 = (tile.core[0] - region.y) * scale, (tile.core[2] - region.x) * scale
            write_rgb_tile(level0, y0, x0, core)
            if pyramid is not None:
                pyramid.level0_written(y0, x0)

        try:
            super_resolve_region(
                self._view.pixels,
                region,
                self.model,
                write_core,
                tile_px=self._sr_tile_px,
                halo_px=self._resolved.halo_px,
                batch_size=resume.remember("sr_batch_size", None),
                skip_batches=resume.done_batches("sr"),
                shard=shard,
                on_batch_written=lambda index: resume.mark_batch_done(
                    "sr", index, None if shard is None else shard[0]
                ),
                progress=self.progress,
                cancel=self.cancel,
            )
        except BaseException:
            self._stop_pyramid()
            raise

    def _compute_classification(self, shard: tuple[int, int] | None) -> TileClassification:
        resume, model = self._resume, self.model
        grid = TileGrid(self._region, self._cls_px)
        probabilities, done = resume.restore_classified(grid.shape, len(model.class_names))

        def save(batch, outputs) -> None:
            positions = np.array([(t.row, t.column) for t in batch.tiles], np.float32)
            resume.save_classified_batch(batch.index, positions, outputs)

        try:
            return classify_region(
                self._view.tissue_levels,
                0,
                self._region,
                model,
                model.class_names,
                tile_px=self._cls_px,
                probabilities=probabilities,
                batch_size=resume.remember("classification_batch_size", None),
                min_tissue_fraction=self._resolved.min_tissue_fraction,
                skip_batches=done,
                shard=shard,
                on_batch_written=save,
                progress=self.progress,
                cancel=self.cancel,
            )
        except BaseException:
            self._stop_pyramid()
            raise

    # -- finish -------------------------------------------------------------------------
    def finish(self) -> SlideResult:
        """Write every output not written yet and mark the result complete."""
        if self.complete:
            return self._finished_result(resumed=True)
        if not self._computed_all:
            self.compute()  # restores what other processes computed; computes what is left
        try:
            summary = self._finish_image()
        finally:
            self._stop_pyramid()
        if self._classified is not None:
            summary.update(self._write_classification(self._classified))
        self._resume.mark_complete(summary)
        return self._finished_result(resumed=False)

    @functools.cached_property
    def _view(self) -> LevelView:
        """The pixels this job reads: its level, resampled to its µm/px if it has one."""
        return view_of(self.slide, self._resolved)

    def _finish_image(self) -> dict:
        region, meta = self._region, self.slide.metadata
        # SR output pixels span 1/scale level pixels; the overview's span several.
        sr = self._resolved.super_resolution
        step = 1.0 / self.model.scale if sr else self._write_overview()
        grid = self._view.grid.coarser(step, (region.y, region.x))
        paths = self.store.paths
        n_levels = self.store.finish_image(grid, paths.stem, self._pyramid)
        return {
            "input": str(meta.path),
            "level": self._resolved.level,
            "region_xywh": [region.x, region.y, region.width, region.height],
            "mpp": self._view.mpp,
            "read_factor": round(self._view.factor, 6),
            "model": self.model.identity,
            "scale": self.model.scale if self._resolved.super_resolution else None,
            "output_shape_yx": list(self.store.image_level(0).shape[1:]),
            "pyramid_levels": n_levels,
            "seconds": round(time.perf_counter() - self._started, 2),
        }

    def _write_overview(self) -> float:
        """Without SR the labels still need an image: the region at ~16 px per tile, block
        means made and written one chunk row at a time (never the whole level in memory)."""
        region, chunk_px = self._region, 512
        step = max(1, self._cls_px // OVERVIEW_PX_PER_TILE)
        level0 = self.store.image_level0(coarse_shape(region, step), chunk_px)
        source = self._view.pixels
        for y, band in coarse_bands(source, region, step, band_rows=chunk_px):
            write_rgb_tile(level0, y, 0, band)
        return float(step)

    def _write_classification(self, classified: TileClassification) -> dict:
        """Labels, probabilities and the tile table; the summary's classification part."""
        names, cls_px, view, paths = (
            classified.class_names,
            self._cls_px,
            self._view,
            self.store.paths,
        )
        grid = self._view.grid.coarser(cls_px, (self._region.y, self._region.x))
        self.store.write_probabilities(classified.probabilities)
        self.store.write_labels(classified.label_map, names, class_colors(names), grid)
        mpp0 = None if view.mpp is None else view.mpp / view.downsample  # level 0's µm/px
        rows = tables.tile_rows(classified, view.downsample, mpp0)
        tables.write_tile_csv(paths.csv, rows, names)
        if self._resolved.geojson:
            tables.write_tile_geojson(paths.geojson, rows, _colours(names))
        counts = classified.counts()
        tile_area_mm2 = (cls_px * view.mpp / 1000.0) ** 2 if view.mpp else None
        return {
            "classification_tile_px": cls_px,
            "tiles": int(np.prod(classified.grid.shape)),
            "tissue_tiles": int(classified.tissue.sum()),
            "tiles_per_class": counts,
            "area_mm2_per_class": (
                {k: round(v * tile_area_mm2, 4) for k, v in counts.items()}
                if tile_area_mm2
                else None
            ),
        }

    def _finished_result(self, resumed: bool) -> SlideResult:
        """The result, with the optional copies asked for written where missing."""
        paths = self.store.paths
        result = SlideResult(paths.zarr, summary=self._resume.summary, resumed_complete=resumed)
        tables_written = self._resolved.classification and paths.csv.exists()
        result.csv_path = paths.csv if tables_written else None
        if resumed and self._resolved.geojson and tables_written and not paths.geojson.exists():
            rows = tables.read_tile_csv(paths.csv)  # a copy asked of a finished result
            tables.write_tile_geojson(paths.geojson, rows, _colours(self.model.class_names))
        if self._resolved.ome_tiff and not (resumed and paths.ome_tiff.exists()):
            write_ome_tiff(paths.zarr, paths.ome_tiff)
        result.geojson_path = paths.geojson if paths.geojson.exists() else None
        result.ome_tiff_path = paths.ome_tiff if paths.ome_tiff.exists() else None
        return result

    def _stop_pyramid(self) -> None:
        if self._pyramid is not None:
            self._pyramid.close()
            self._pyramid = None

    def close(self) -> None:
        """Stop the pyramid's threads (after an error or a cancel) and release the lock."""
        self._stop_pyramid()
        if self.lock is not None:
            self.lock.release()


@contextlib.contextmanager
def open_slide_job(
    slide: Slide,
    out_dir: str | os.PathLike,
    model: TileModel,
    settings: SlideJobSettings,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    lock: bool = False,
):
    """A :class:`SlideJob` writing ``out_dir/<name>.ome.zarr``; closed on exit."""
    store = ResultStore(ResultPaths.for_slide(out_dir, slide.metadata.path).zarr, overwrite)
    job = SlideJob(slide, model, store, settings, progress=progress, cancel=cancel, lock=lock)
    try:
        yield job
    finally:
        job.close()
