"""What scripts, notebooks, the CLI and the napari widgets call.

>>> from napari_shisrcnet import api
>>> model = api.load_model("bicubic", scale=2)
>>> sr = api.super_resolve("slide.svs", model, region=api.Region(0, 0, 512, 512))
>>> result = api.process_slide("slide.svs", "results/", model, classification=False)

Settings are :class:`~napari_shisrcnet.settings.SlideJobSettings` fields, given either as
a settings object or as keywords (``sr_tile_px=256``); keywords change the object given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine.classification import TileClassification, classify_region
from .engine.inference import TileModel
from .engine.runner import CancelToken, ProgressCallback
from .engine.super_resolution import array_core_writer, super_resolve_region
from .geometry import Region
from .io.slides import Slide, open_slide, slide_from_arrays
from .model import BicubicSR, load_checkpoint
from .model.bundled import checkpoint_path
from .results.paths import ResultPaths
from .settings import PAPER_HR_CROP_PX, SlideJobSettings, check_model, resolve, view_of
from .slide_job import SlideJob, SlideResult, open_slide_job

__all__ = [
    "CancelToken",
    "ModelSpec",
    "Region",
    "SlideJob",
    "SlideJobSettings",
    "SlideResult",
    "TileClassification",
    "TileModel",
    "classify_tiles",
    "load_model",
    "open_slide",
    "process_slide",
    "result_zarr_path",
    "super_resolve",
]

ImageInput = str | os.PathLike | Slide | np.ndarray | list
ModelInput = str | os.PathLike | TileModel


def load_model(
    spec: ModelInput = "default",
    device: str = "auto",
    scale: int | None = None,
    *,
    compile: bool = False,
    cuda_graphs: bool = False,
) -> TileModel:
    """A ready-to-run model.

    Parameters
    ----------
    spec : str, path or TileModel
        ``"default"`` (the bundled model), a ``.safetensors`` checkpoint, ``"bicubic"``,
        or a model already loaded (returned as is).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    scale : int, optional
        Checks a checkpoint's scale; picks the bicubic scale (default 2).
    compile, cuda_graphs : bool
        ``torch.compile`` the network with fixed tile shapes (and replay CUDA graphs):
        worth it for whole slides on a GPU; compiling takes a minute.
    """
    if isinstance(spec, TileModel):
        return spec
    if str(spec) == "bicubic":
        scale = scale or 2
        return TileModel(
            BicubicSR(scale),
            device,
            identity=f"bicubic-x{scale}",
            compile=compile,
            cuda_graphs=cuda_graphs,
        )
    path = checkpoint_path(spec, scale)  # "default" with a scale: that scale's bundled model
    model, info = load_checkpoint(path, expected_scale=scale)
    provenance = info.provenance or {}
    hr_crop_px = int(provenance.get("hr_crop_px", PAPER_HR_CROP_PX))
    hr_mpp = provenance.get("hr_mpp")  # µm/px of the training HR images, where recorded
    offsets = info.class_logit_offsets
    # Results are reused by identity, so a changed decision rule must change it.
    decided = "" if offsets is None else "+offsets" + ",".join(f"{v:g}" for v in offsets)
    return TileModel(
        model,
        device,
        class_names=info.class_names,
        identity=f"{info.architecture}:{info.tensors_sha256[:16]}{decided}",
        training_tile_px=hr_crop_px // info.scale if info.scale else None,
        lr_mpp=float(hr_mpp) * (info.scale or 1) if hr_mpp else None,
        class_logit_offsets=offsets,
        compile=compile,
        cuda_graphs=cuda_graphs,
    )


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load where: what a cluster sends its workers (each loads it once)."""

    name: str = "default"
    device: str = "auto"
    scale: int | None = None
    compile: bool = False
    cuda_graphs: bool = False

    def load(self) -> TileModel:
        return load_model(
            self.name, self.device, self.scale, compile=self.compile, cuda_graphs=self.cuda_graphs
        )


def as_slide(image_or_path: ImageInput) -> Slide:
    """A :class:`Slide` from a path, a Slide, or (Y, X, 3) uint8 arrays (finest first)."""
    if isinstance(image_or_path, Slide):
        return image_or_path
    if isinstance(image_or_path, str | os.PathLike):
        return open_slide(image_or_path)
    levels = image_or_path if isinstance(image_or_path, list | tuple) else [image_or_path]
    return slide_from_arrays(levels)


def _settings(settings: SlideJobSettings | None, **changes) -> SlideJobSettings:
    return (settings or SlideJobSettings()).replace(**changes)


def _prepared(image_or_path: ImageInput, model: ModelInput, device: str, settings):
    """The model, the settings resolved for this slide, and the pixels they read."""
    slide, tile_model = as_slide(image_or_path), load_model(model, device)
    check_model(settings, tile_model)
    resolved = resolve(settings, slide, tile_model, {})
    return tile_model, resolved, view_of(slide, resolved)


def super_resolve(
    image_or_path: ImageInput,
    model: ModelInput = "default",
    settings: SlideJobSettings | None = None,
    *,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **changes,
) -> np.ndarray:
    """Super-resolve a region into memory.

    Parameters
    ----------
    image_or_path : path, Slide, array or list of arrays
        The slide (see :func:`as_slide`).
    model : str, path or TileModel
        See :func:`load_model`.
    settings : SlideJobSettings, optional
        Uses ``level``/``target_mpp``, ``region``, ``sr_tile_px``, ``halo_px`` and
        ``batch_size``; ``changes`` (field names as keywords) change it.
    device : str
        Where to load ``model`` when it is not loaded yet.
    progress, cancel
        A callback receiving progress events, and a :class:`CancelToken`.

    Returns
    -------
    numpy.ndarray
        (height * scale, width * scale, 3) uint8. For whole slides or large regions use
        :func:`process_slide`, which streams to disk.
    """
    settings = _settings(settings, classification=False, **changes)
    tile_model, resolved, view = _prepared(image_or_path, model, device, settings)
    region, scale = resolved.region, tile_model.scale
    assert region is not None  # resolve() fills it in
    output = np.zeros((region.height * scale, region.width * scale, 3), np.uint8)
    super_resolve_region(
        view.pixels,
        region,
        tile_model,
        array_core_writer(output, region, scale),
        tile_px=resolved.sr_tile_px,
        halo_px=resolved.halo_px,
        batch_size=resolved.batch_size,
        progress=progress,
        cancel=cancel,
    )
    return output


def classify_tiles(
    image_or_path: ImageInput,
    model: ModelInput = "default",
    settings: SlideJobSettings | None = None,
    *,
    device: str = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **changes,
) -> TileClassification:
    """Classify every tissue tile (LR tile -> SR -> classifier); background tiles are skipped.

    Parameters
    ----------
    image_or_path : path, Slide, array or list of arrays
        The slide (see :func:`as_slide`).
    model : str, path or TileModel
        A model with a classifier (see :func:`load_model`).
    settings : SlideJobSettings, optional
        Uses ``level``/``target_mpp``, ``region``, ``classification_tile_px``,
        ``batch_size`` and ``min_tissue_fraction`` (0 classifies every tile); ``changes``
        (field names as keywords) change it.
    device : str
        Where to load ``model`` when it is not loaded yet.
    progress, cancel
        A callback receiving progress events, and a :class:`CancelToken`.

    Returns
    -------
    TileClassification
        Per-tile probabilities (NaN for background), tissue fractions, the label map
        (0 = background, class i -> i + 1) and the class names, over the tile grid.
    """
    settings = _settings(settings, super_resolution=False, **changes)
    tile_model, resolved, view = _prepared(image_or_path, model, device, settings)
    region, tile_px = resolved.region, resolved.classification_tile_px
    assert region is not None and tile_px is not None  # resolve() fills them in
    return classify_region(
        view.tissue_levels,
        0,
        region,
        tile_model,
        tile_model.class_names,
        tile_px=tile_px,
        batch_size=resolved.batch_size,
        min_tissue_fraction=resolved.min_tissue_fraction,
        progress=progress,
        cancel=cancel,
    )


def result_zarr_path(out_dir: str | os.PathLike, slide_path: str | os.PathLike) -> Path:
    """Where :func:`process_slide` writes the OME-Zarr result of ``slide_path``."""
    return ResultPaths.for_slide(out_dir, slide_path).zarr


def process_slide(
    path: ImageInput,
    out_dir: str | os.PathLike,
    model: ModelInput = "default",
    settings: SlideJobSettings | None = None,
    *,
    device: str = "auto",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **changes,
) -> SlideResult:
    """Process one slide into ``out_dir/<name>.ome.zarr`` (+ ``.tiles.csv``, ``.geojson``,
    ``.ome.tif`` as the settings ask).

    Parameters
    ----------
    path : path, Slide or arrays
        The slide.
    out_dir : path
        Output folder (created).
    model : str, path or TileModel
        See :func:`load_model`.
    settings : SlideJobSettings, optional
        What to compute and how; ``changes`` (field names as keywords) change it.
    device : str
        Where to load ``model`` when it is not loaded yet.
    overwrite : bool
        Replace a result of a different run in ``out_dir`` (never a foreign folder).
    progress, cancel
        A callback receiving :class:`~napari_shisrcnet.engine.runner.ProgressEvent` and a
        :class:`CancelToken` checked between batches.

    Rerunning the same call resumes an interrupted run; a finished result is returned as
    is. SR ``sr_tile_px`` and ``batch_size`` default to what suits the device (512 px
    tiles and a batch from free memory on CUDA, 256 px and one tile on the CPU).
    """
    settings = _settings(settings, **changes)
    tile_model = load_model(model, device)  # SlideJob refuses a model unfit for settings
    with (
        as_slide(path) as slide,
        open_slide_job(
            slide,
            out_dir,
            tile_model,
            settings,
            overwrite=overwrite,
            progress=progress,
            cancel=cancel,
            lock=True,
        ) as job,
    ):
        job.compute()
        return job.finish()
