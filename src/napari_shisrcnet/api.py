"""What scripts, notebooks, the CLI and the napari widgets call.

>>> from napari_shisrcnet import api
>>> model = api.load_model("bicubic", scale=2)
>>> sr = api.super_resolve("slide.svs", model, region=api.Region(0, 0, 512, 512))
>>> result = api.process_slide("slide.svs", "results/", model, classify=False)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np

from . import __version__
from .classes import class_colors
from .engine.classification import (
    TileClassification,
    classify_region,
    default_classification_batch_size,
)
from .engine.inference import TileModel
from .engine.runner import CancelToken, ProgressCallback
from .engine.super_resolution import (
    DEFAULT_HALO_PX,
    array_core_writer,
    default_batch_size,
    default_sr_tile_px,
    super_resolve_region,
)
from .engine.tiling import READ_BAND_PX, Region, Tile, TileGrid
from .engine.tissue import MIN_TISSUE_FRACTION
from .io.ome_zarr import ResultStore, write_rgb_tile
from .io.pyramid import PyramidBuilder
from .io.slides import Slide, SlideError, open_slide, slide_from_arrays
from .io.tables import tile_rows, write_tile_csv, write_tile_geojson
from .model import BicubicSR, load_checkpoint
from .model.bundled import bundled_weights_path

#: The paper's HR crop (384 px); the classifier's field of view in LR px is this / scale.
PAPER_HR_CROP_PX = 384
#: Overview pixels per classification tile side when SR is off.
OVERVIEW_PX_PER_TILE = 16

__all__ = [
    "CancelToken",
    "Region",
    "SlideResult",
    "TileClassification",
    "TileModel",
    "classify_tiles",
    "load_model",
    "open_slide",
    "process_slide",
    "super_resolve",
]


def load_model(
    spec: str | os.PathLike | TileModel = "default",
    device: str = "auto",
    scale: int | None = None,
    *,
    compile: bool = False,
    cuda_graphs: bool = False,
) -> TileModel:
    """A ready-to-run model: ``"default"`` (bundled), a checkpoint path, or ``"bicubic"``.

    ``scale`` checks a checkpoint's scale (and picks the bicubic scale, default 2).
    ``compile`` / ``cuda_graphs``: see :class:`~napari_shisrcnet.engine.inference.TileModel`
    (worth it for whole slides on a GPU; compiling takes a minute).
    """
    if isinstance(spec, TileModel):
        return spec
    speed = {"compile": compile, "cuda_graphs": cuda_graphs}
    if str(spec) == "bicubic":
        scale = scale or 2
        return TileModel(BicubicSR(scale), device, identity=f"bicubic-x{scale}", **speed)
    path = bundled_weights_path(str(spec)) if str(spec) == "default" else Path(spec)
    model, info = load_checkpoint(path, expected_scale=scale)
    provenance = info.provenance or {}
    hr_crop_px = int(provenance.get("hr_crop_px", PAPER_HR_CROP_PX))
    return TileModel(
        model,
        device,
        class_names=info.class_names,
        identity=f"{info.architecture}:{info.tensors_sha256[:16]}",
        training_tile_px=hr_crop_px // info.scale if info.scale else None,
        **speed,
    )


def _as_slide(image_or_path) -> Slide:
    if isinstance(image_or_path, Slide):
        return image_or_path
    if isinstance(image_or_path, str | os.PathLike):
        return open_slide(image_or_path)
    levels = image_or_path if isinstance(image_or_path, list | tuple) else [image_or_path]
    return slide_from_arrays(levels)


def _checked_level_and_region(slide: Slide, level: int, region: Region | None) -> Region:
    n_levels = len(slide.levels)
    if not 0 <= level < n_levels:
        raise SlideError(
            f"{slide.metadata.path}: level {level} requested; it has {n_levels} level(s)"
        )
    shape = tuple(slide.levels[level].shape[:2])
    return Region.whole(shape) if region is None else region.clipped_to(shape)


def super_resolve(
    image_or_path,
    model: str | os.PathLike | TileModel = "default",
    *,
    level: int = 0,
    region: Region | None = None,
    tile_px: int | None = None,
    halo_px: int = DEFAULT_HALO_PX,
    batch_size: int | None = None,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Super-resolve a region into memory: (height*scale, width*scale, 3) uint8.

    For whole slides or large regions use :func:`process_slide`, which streams to disk.
    ``tile_px`` defaults to what suits the device (see :func:`default_sr_tile_px`).
    """
    slide, tile_model = _as_slide(image_or_path), load_model(model, device)
    region = _checked_level_and_region(slide, level, region)
    scale = tile_model.scale
    output = np.zeros((region.height * scale, region.width * scale, 3), np.uint8)
    super_resolve_region(
        slide.tile_sources[level],
        region,
        tile_model,
        array_core_writer(output, region, scale),
        tile_px=tile_px,
        halo_px=halo_px,
        batch_size=batch_size,
        progress=progress,
        cancel=cancel,
    )
    return output


def _require_classifier(tile_model: TileModel) -> None:
    if not tile_model.can_classify:
        raise ValueError(
            f"model {tile_model.identity} has no classifier; use a SHISRCNet checkpoint or "
            "turn classification off (--no-classify)"
        )


def default_classification_tile_px(tile_model: TileModel) -> int:
    return tile_model.training_tile_px or PAPER_HR_CROP_PX // tile_model.scale


def classify_tiles(
    image_or_path,
    model: str | os.PathLike | TileModel = "default",
    *,
    level: int = 0,
    region: Region | None = None,
    tile_px: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    min_tissue_fraction: float = MIN_TISSUE_FRACTION,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TileClassification:
    """Classify every tissue tile (LR tile -> SR -> classifier); background tiles are skipped.

    ``min_tissue_fraction=0`` classifies every tile.
    """
    slide, tile_model = _as_slide(image_or_path), load_model(model, device)
    region = _checked_level_and_region(slide, level, region)
    _require_classifier(tile_model)
    return classify_region(
        slide.tile_sources,
        level,
        region,
        tile_model,
        tile_model.class_names,
        tile_px=tile_px or default_classification_tile_px(tile_model),
        batch_size=batch_size,
        min_tissue_fraction=min_tissue_fraction,
        progress=progress,
        cancel=cancel,
    )


@dataclass
class SlideResult:
    """Where one slide's results are, and what they say."""

    zarr_path: Path
    csv_path: Path | None = None
    geojson_path: Path | None = None
    summary: dict = field(default_factory=dict)
    resumed_complete: bool = False


def _result_stem(path: str | os.PathLike) -> str:
    """``slide.ome.tiff`` -> ``slide``: results are ``OUT/<stem>.ome.zarr``, ``.tiles.csv``..."""
    return Path(path).name.split(".")[0]


def result_zarr_path(out_dir: str | os.PathLike, slide_path: str | os.PathLike) -> Path:
    """Where :func:`process_slide` writes the OME-Zarr result of ``slide_path``."""
    return Path(out_dir) / f"{_result_stem(slide_path)}.ome.zarr"


def _sr_tile_px(result_path: Path, tile_model: TileModel, overwrite: bool) -> int:
    """The tile size an existing result was started with (so it resumes, even on another
    device or from a cluster's finishing task), else the one that suits the device."""
    recorded = None if overwrite else ResultStore.recorded_state(result_path)
    signature = (recorded or {}).get("signature") or {}
    return signature.get("sr_tile_px") or default_sr_tile_px(tile_model)


def _signature(slide: Slide, level, region, tile_model, sr, classify, tile_px, halo_px, cls_px):
    path = slide.metadata.path
    stat = path.stat() if path.exists() else None
    return {
        "input": str(path.resolve()) if stat else str(path),
        "input_bytes": stat.st_size if stat and path.is_file() else None,
        "input_mtime_ns": stat.st_mtime_ns if stat else None,
        "level": level,
        "region_yxhw": [region.y, region.x, region.height, region.width],
        "model": tile_model.identity,
        "scale": tile_model.scale,
        "super_resolution": sr,
        "classification": classify,
        "sr_tile_px": tile_px if sr else None,
        "halo_px": halo_px if sr else None,
        "classification_tile_px": cls_px if classify else None,
        "package_version": __version__,
        "tile_order": f"bands-{READ_BAND_PX}",  # batches are slices of this order (resume)
    }


def _pixel_centre_translation(region: Region, step_px: float, mpp: float) -> tuple[float, float]:
    """Physical position of the first output pixel's centre, for outputs whose pixel spans
    ``step_px`` level pixels (napari and NGFF place a pixel's centre at its coordinate)."""
    offset = (step_px - 1.0) / 2.0
    return ((region.y + offset) * mpp, (region.x + offset) * mpp)


@dataclass
class _SlideJob:
    """Everything the steps of one ``process_slide`` call share."""

    store: ResultStore
    slide: Slide
    level: int
    region: Region
    tile_model: TileModel
    tile_px: int
    halo_px: int
    cls_px: int
    batch_size: int | None
    progress: ProgressCallback | None
    cancel: CancelToken | None
    shard: tuple[int, int] | None


def _prepare(job: _SlideJob, super_resolution: bool) -> None:
    """Create the level-0 array and record the batch sizes, before any worker starts."""
    store, region, tile_model = job.store, job.region, job.tile_model
    if super_resolution:
        scale = tile_model.scale
        store.image_level0((region.height * scale, region.width * scale), job.tile_px * scale)
        window = TileGrid(region, job.tile_px, job.halo_px).window_shape
        store.remember("sr_batch_size", job.batch_size or default_batch_size(tile_model, window))
    _classification_batch_size(job)


def _classification_batch_size(job: _SlideJob) -> int:
    """As recorded by the first run (or preparing client): every run batches alike."""
    default = default_classification_batch_size(job.tile_model, job.cls_px)
    return job.store.remember("classification_batch_size", job.batch_size or default)


def _write_sr(job: _SlideJob) -> tuple[float, PyramidBuilder | None]:
    """SR tiles into level 0; the pyramid grows behind them (a shard's is built at finish)."""
    _prepare(job, super_resolution=True)
    store, region, scale, shard = job.store, job.region, job.tile_model.scale, job.shard
    level0 = store.image_level(0)
    pyramid = store.pyramid_builder() if shard is None else None

    def write_core(tile: Tile, core: np.ndarray) -> None:
        y0, x0 = (tile.core[0] - region.y) * scale, (tile.core[2] - region.x) * scale
        write_rgb_tile(level0, y0, x0, core)
        if pyramid is not None:
            pyramid.level0_written(y0, x0)

    try:
        super_resolve_region(
            job.slide.tile_sources[job.level],
            region,
            job.tile_model,
            write_core,
            tile_px=job.tile_px,
            halo_px=job.halo_px,
            batch_size=store.remember("sr_batch_size", None),  # as recorded by the first run
            skip_batches=store.done_batches("sr"),
            shard=shard,
            on_batch_written=lambda index: store.mark_batch_done(
                "sr", index, None if shard is None else shard[0]
            ),
            progress=job.progress,
            cancel=job.cancel,
        )
    except BaseException:
        if pyramid is not None:
            pyramid.close()
        raise
    return 1.0 / scale, pyramid


def _write_overview(job: _SlideJob) -> float:
    """Without SR the labels still need an image: the region at ~16 px per tile."""
    region = job.region
    step = max(1, job.cls_px // OVERVIEW_PX_PER_TILE)
    source = job.slide.levels[job.level][
        region.y : region.y + region.height, region.x : region.x + region.width
    ]
    pad = ((0, -region.height % step), (0, -region.width % step), (0, 0))
    small = da.coarsen(
        np.mean, da.pad(source, pad, mode="edge").astype(np.float32), {0: step, 1: step}
    )
    small = (small + 0.5).astype(np.uint8).transpose(2, 0, 1)
    level0 = job.store.image_level0(small.shape[1:], 512)
    # Local threads, even when a dask.distributed client is the default scheduler.
    da.store(small.rechunk(level0.chunks), level0, lock=False, scheduler="threads")
    return float(step)


def _restore_classified(store, n_rows, n_columns, n_classes):
    probabilities = np.full((n_rows, n_columns, n_classes), np.nan, np.float32)
    done = store.classified_batches()
    for saved in done.values():
        rows, columns = saved[:, 0].astype(int), saved[:, 1].astype(int)
        probabilities[rows, columns] = saved[:, 2:]
    return probabilities, set(done)


def _classify(job: _SlideJob) -> TileClassification:
    store, tile_model = job.store, job.tile_model
    grid = TileGrid(job.region, job.cls_px)
    probabilities, done = _restore_classified(store, *grid.shape, len(tile_model.class_names))

    def save(batch, outputs) -> None:
        positions = np.array([(t.row, t.column) for t in batch.tiles], np.float32)
        store.save_classified_batch(batch.index, positions, outputs)

    return classify_region(
        job.slide.tile_sources,
        job.level,
        job.region,
        tile_model,
        tile_model.class_names,
        tile_px=job.cls_px,
        probabilities=probabilities,
        batch_size=_classification_batch_size(job),
        skip_batches=done,
        shard=job.shard,
        on_batch_written=save,
        progress=job.progress,
        cancel=job.cancel,
    )


def process_slide(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: str | os.PathLike | TileModel = "default",
    *,
    level: int = 0,
    region: Region | None = None,
    super_resolution: bool = True,
    classification: bool = True,
    tile_px: int | None = None,
    halo_px: int = DEFAULT_HALO_PX,
    classification_tile_px: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    geojson: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    shard: tuple[int, int] | None = None,
    prepare_only: bool = False,
) -> SlideResult:
    """Process one slide into ``out_dir/<name>.ome.zarr`` (+ ``.tiles.csv``, ``.geojson``).

    Rerunning the same call resumes an interrupted run; a finished result is returned as is.
    For a cluster (see :mod:`napari_shisrcnet.cluster`): ``prepare_only`` creates the
    result and fixes its batching; ``shard=(k, n)`` computes only batches k, k + n, ...
    and returns unfinished; a last plain call finishes (pyramid, labels, tables).
    SR ``tile_px`` and ``batch_size`` default to what suits the device (512 px tiles and
    a batch from free memory on CUDA, 256 px and one tile on the CPU).
    """
    if not (super_resolution or classification):
        raise ValueError("nothing to do: both super-resolution and classification are off")
    tile_model = load_model(model, device)
    if classification:
        _require_classifier(tile_model)
    with _as_slide(path) as slide:
        region = _checked_level_and_region(slide, level, region)
        cls_px = classification_tile_px or default_classification_tile_px(tile_model)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = _result_stem(slide.metadata.path)
        zarr_path = result_zarr_path(out_dir, slide.metadata.path)
        tile_px = tile_px or _sr_tile_px(zarr_path, tile_model, overwrite)
        signature = _signature(
            slide,
            level,
            region,
            tile_model,
            super_resolution,
            classification,
            tile_px,
            halo_px,
            cls_px,
        )
        store = ResultStore(zarr_path, signature, overwrite=overwrite)
        result = SlideResult(store.path)
        if store.complete:
            result.summary, result.resumed_complete = store.summary, True
            result.csv_path, result.geojson_path = _existing(out_dir, stem)
            return result
        started = time.perf_counter()
        mpp = slide.metadata.level_mpp(level)
        unit, physical = ("micrometer", mpp) if mpp else (None, 1.0)
        job = _SlideJob(
            store,
            slide,
            level,
            region,
            tile_model,
            tile_px,
            halo_px,
            cls_px,
            batch_size,
            progress,
            cancel,
            shard,
        )
        if prepare_only:
            _prepare(job, super_resolution)
            return result
        step, pyramid = _write_sr(job) if super_resolution else (None, None)
        try:
            if not super_resolution and shard is None:
                step = _write_overview(job)
            classified = _classify(job) if classification else None
            if shard is not None:
                return result
            translation = _pixel_centre_translation(region, step, physical)
            n_levels = store.finish_image(step * physical, translation, unit, stem, pyramid)
        finally:
            if pyramid is not None:
                pyramid.close()  # stops its threads if classification failed or was cancelled
        summary = {
            "input": str(slide.metadata.path),
            "level": level,
            "region_xywh": [region.x, region.y, region.width, region.height],
            "mpp": mpp,
            "model": tile_model.identity,
            "scale": tile_model.scale if super_resolution else None,
            "output_shape_yx": list(store.group["0"].shape[1:]),
            "pyramid_levels": n_levels,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if classified is not None:
            summary.update(
                _write_classification(
                    job, classified, out_dir, stem, physical, unit, geojson, result
                )
            )
        store.mark_complete(summary)
        result.summary = summary
        return result


def _write_classification(
    job: _SlideJob, classified, out_dir, stem, physical, unit, geojson, result
) -> dict:
    store, slide, region, cls_px = job.store, job.slide, job.region, job.cls_px
    names = classified.class_names
    colors = class_colors(names)
    store.write_probabilities(classified.probabilities)
    store.write_labels(
        classified.label_map,
        names,
        [(*c, 255) for c in colors],
        cls_px * physical,
        _pixel_centre_translation(region, cls_px, physical),
        unit,
    )
    rows = tile_rows(classified, slide.metadata.level_downsamples[job.level], slide.metadata.mpp)
    result.csv_path = write_tile_csv(out_dir / f"{stem}.tiles.csv", rows, names)
    if geojson:
        result.geojson_path = write_tile_geojson(
            out_dir / f"{stem}.geojson", rows, dict(zip(names, colors, strict=True))
        )
    counts = classified.counts()
    tile_area_mm2 = (cls_px * physical / 1000.0) ** 2 if unit else None
    return {
        "classification_tile_px": cls_px,
        "tiles": int(np.prod(classified.grid.shape)),
        "tissue_tiles": int(classified.tissue.sum()),
        "tiles_per_class": counts,
        "area_mm2_per_class": (
            {k: round(v * tile_area_mm2, 4) for k, v in counts.items()} if tile_area_mm2 else None
        ),
    }


def _existing(out_dir: Path, stem: str) -> tuple[Path | None, Path | None]:
    csv_path, geojson_path = out_dir / f"{stem}.tiles.csv", out_dir / f"{stem}.geojson"
    return (
        csv_path if csv_path.exists() else None,
        geojson_path if geojson_path.exists() else None,
    )
