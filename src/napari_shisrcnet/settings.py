"""What one slide job is asked to do: :class:`SlideJobSettings`, one copy of the defaults.

The command line builds it from one flag table, the cluster sends it to its workers as it
is, the widgets take their defaults from it, and a result records its
:meth:`~SlideJobSettings.signature` so that a rerun resumes only the same job.
:func:`resolve` fills in what was left to the slide and the model (level, region, tile
sizes); :func:`check_model` refuses a model that cannot give the outputs asked for.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, fields, replace

from .engine.inference import TileModel
from .engine.super_resolution import default_sr_tile_px
from .engine.tiling import DEFAULT_HALO_PX
from .engine.tissue import MIN_TISSUE_FRACTION
from .errors import OptionError
from .geometry import Region, physical_grid
from .io.resampled import NATIVE_TOLERANCE, LevelView, level_view, resampled_shape
from .io.slides import Slide, SlideMetadata
from .model.classifier import MIN_INPUT_SIDE_PX


class PixelSizeWarning(UserWarning):
    """A slide read at a pixel size other than the model's (the user can supply it)."""


#: Longest tile side accepted (a 8192 px x8 tile is already 4 GB of float activations).
MAX_TILE_PX = 8192
#: The paper's HR crop (384 px); the classifier's field of view in LR px is this / scale.
PAPER_HR_CROP_PX = 384


@dataclass(frozen=True)
class SlideJobSettings:
    """Settings of one slide job (:class:`~napari_shisrcnet.slide_job.SlideJob`).

    Parameters
    ----------
    level : int
        Pyramid level to read (0 = full resolution).
    target_mpp : float, optional
        Read the slide at this µm/px (the coarsest level not coarser, resampled), instead of
        ``level``; needs a known pixel size (the file's, or ``slide_mpp``).
    match_model_mpp : bool
        With no ``target_mpp``: read at the µm/px the model was trained at, when the model
        records it and the slide's pixel size is known; else read ``level`` as stored.
    slide_mpp : float, optional
        The slide's level-0 µm/px, for files that do not record it (or record it wrongly).
    region : Region, optional
        Rectangle of the level read, in its pixels; ``None`` = the whole level.
    super_resolution, classification : bool
        Which outputs to compute (at least one).
    sr_tile_px : int, optional
        SR tile core side; ``None`` = what suits the device (512 on CUDA, 256 elsewhere).
    halo_px : int
        SR context read on each side of a tile core.
    classification_tile_px : int, optional
        Classification tile side in level pixels; ``None`` = the model's training field
        of view.
    batch_size : int, optional
        Tiles per batch; ``None`` = from free GPU memory (one SR / eight classification
        tiles on the CPU).
    min_tissue_fraction : float
        A tile is classified when at least this fraction of it is tissue (0: every tile).
    geojson, ome_tiff : bool
        Also write tile polygons as GeoJSON / the image as a pyramidal OME-TIFF.
    """

    level: int = 0
    target_mpp: float | None = None
    match_model_mpp: bool = True
    slide_mpp: float | None = None
    region: Region | None = None
    super_resolution: bool = True
    classification: bool = True
    sr_tile_px: int | None = None
    halo_px: int = DEFAULT_HALO_PX
    classification_tile_px: int | None = None
    batch_size: int | None = None
    min_tissue_fraction: float = MIN_TISSUE_FRACTION
    geojson: bool = False
    ome_tiff: bool = False

    def __post_init__(self) -> None:
        if not (self.super_resolution or self.classification):
            raise OptionError(
                "nothing to do: super-resolution and classification are both off",
                "super_resolution",
                "classification",
            )
        _check_at_least(self.level, 0, "the pyramid level", "level")
        for name, words in (("target_mpp", "the target µm/px"), ("slide_mpp", "the slide's µm/px")):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise OptionError(f"{words} must be > 0, got {value}", name)
        if self.region is not None:
            _check_region(self.region)
        for name, words in (
            ("sr_tile_px", "the SR tile size"),
            ("classification_tile_px", "the classification tile size"),
        ):
            if getattr(self, name) is not None:
                _check_at_least(getattr(self, name), 1, words, name, MAX_TILE_PX)
        _check_at_least(self.halo_px, 0, "the SR halo", "halo_px", MAX_TILE_PX)
        if self.batch_size is not None:
            _check_at_least(self.batch_size, 1, "the batch size", "batch_size")
        if not 0.0 <= self.min_tissue_fraction <= 1.0:
            raise OptionError(
                f"the minimum tissue fraction must be in [0, 1], got {self.min_tissue_fraction}",
                "min_tissue_fraction",
            )

    def replace(self, **changes) -> SlideJobSettings:
        """A copy with ``changes`` (field names as keywords); unknown names are refused."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown slide job settings: {', '.join(sorted(unknown))}")
        return replace(self, **changes) if changes else self

    def signature(self) -> dict:
        """The settings that decide a result's pixels, for resume checks (JSON-ready).

        Call it on resolved settings (level, region and tile sizes filled in). Batch
        sizes are recorded separately, and the optional GeoJSON / OME-TIFF copies do not
        change the result.
        """
        region = self.region
        return {
            "level": self.level,
            "read_mpp": self.target_mpp,
            "slide_mpp": self.slide_mpp,
            "region_yxhw": region.yxhw if region is not None else None,
            "super_resolution": self.super_resolution,
            "classification": self.classification,
            "sr_tile_px": self.sr_tile_px if self.super_resolution else None,
            "halo_px": self.halo_px if self.super_resolution else None,
            "classification_tile_px": (
                self.classification_tile_px if self.classification else None
            ),
            "min_tissue_fraction": self.min_tissue_fraction if self.classification else None,
        }


def _check_region(region: Region) -> None:
    if region.height < 1 or region.width < 1:
        raise OptionError(f"the region must be at least 1x1 px, got {region}", "region")
    if region.y < 0 or region.x < 0:
        raise OptionError(
            f"the region starts outside the image (x {region.x}, y {region.y}); x and y are "
            "pixels of the level read, from 0",
            "region",
        )


def _check_at_least(value, low: int, words: str, option: str, high: int | None = None) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < low:
        raise OptionError(f"{words} must be an integer >= {low}, got {value!r}", option)
    if high is not None and int(value) > high:
        raise OptionError(f"{words} must be at most {high} px, got {value}", option)


def check_model(settings: SlideJobSettings, model: TileModel) -> None:
    """Refuse a model that cannot produce the outputs asked for, before any work."""
    if settings.classification and not model.can_classify:
        raise OptionError(
            f"model {model.identity} has no classifier; use a SHISRCNet checkpoint or "
            "turn classification off",
            "model",
            "classification",
        )
    if settings.super_resolution and not model.can_super_resolve:
        raise OptionError(
            f"model {model.identity} has no SR module; turn super-resolution off",
            "model",
            "super_resolution",
        )


def default_classification_tile_px(model: TileModel) -> int:
    """The LR field of view the classifier learnt on."""
    return model.training_tile_px or PAPER_HR_CROP_PX // model.scale


def with_slide_mpp(slide: Slide, slide_mpp: float | None) -> Slide:
    """``slide`` with its level-0 pixel size set to ``slide_mpp`` (when given)."""
    if slide_mpp is None:
        return slide
    meta = replace(slide.metadata, mpp=slide_mpp, grid=physical_grid(slide_mpp))
    return replace(slide, metadata=meta)


def read_mpp(settings: SlideJobSettings, meta: SlideMetadata, model: TileModel) -> float | None:
    """The µm/px to read the slide at, or None to read a level as stored."""
    if settings.target_mpp is not None:
        target = settings.target_mpp
    elif settings.match_model_mpp and model.lr_mpp is not None and meta.mpp is not None:
        target = model.lr_mpp
    else:
        if settings.match_model_mpp and model.lr_mpp is not None:
            warnings.warn(
                f"{meta.path}: the pixel size is unknown, so it is read as stored, not at the "
                f"{model.lr_mpp:g} µm/px the model learnt at; give the slide's µm/px to read "
                "it at that scale",
                PixelSizeWarning,
                stacklevel=3,
            )
        return None
    if meta.mpp is None:
        raise OptionError(
            f"{meta.path}: the pixel size is unknown; give the slide's µm/px, or read a "
            "level as stored",
            "slide_mpp",
            "target_mpp",
        )
    return target


def read_plan(
    settings: SlideJobSettings, meta: SlideMetadata, model: TileModel
) -> tuple[int, float, float | None]:
    """(level, factor, target µm/px): read ``level`` resampled by ``factor`` stored pixels
    per pixel, the coarsest level not coarser than the target (factor >= 1 unless even
    level 0 is coarser); without a target, ``settings.level`` as stored (factor 1, None)."""
    target = read_mpp(settings, meta, model)
    n_levels = len(meta.level_shapes)
    if target is None:
        if settings.level >= n_levels:
            raise OptionError(
                f"{meta.path}: level {settings.level} requested; it has {n_levels} level(s)",
                "level",
            )
        return settings.level, 1.0, None
    level_mpps = [meta.level_mpp(i) or 0.0 for i in range(n_levels)]
    finer = [i for i, mpp in enumerate(level_mpps) if mpp <= target * (1 + NATIVE_TOLERANCE)]
    level = max(finer) if finer else 0
    return level, target / level_mpps[level], target


def read_shape(meta: SlideMetadata, level: int, factor: float) -> tuple[int, int]:
    """Pixels of ``level`` read at ``factor`` (as :func:`level_view` reads them)."""
    return resampled_shape(meta.level_shapes[level], factor)


def _level_and_region(
    settings: SlideJobSettings, meta: SlideMetadata, model: TileModel
) -> tuple[int, float | None, Region]:
    level, factor, mpp = read_plan(settings, meta, model)
    shape = read_shape(meta, level, factor)
    if settings.region is None:
        return level, mpp, Region.whole(shape)
    try:
        return level, mpp, settings.region.clipped_to(shape)
    except ValueError as error:
        raise OptionError(f"{meta.path}: {error}", "region") from None


def _check_classifier_input(region: Region, tile_px: int, model: TileModel) -> None:
    """A classification window is the tile, or the region where it is smaller; after SR
    the classifier needs ``MIN_INPUT_SIDE_PX`` on each side."""
    scale = model.scale if model.can_super_resolve else 1
    side = min(tile_px, region.height, region.width)
    if side * scale < MIN_INPUT_SIDE_PX:
        need = -(-MIN_INPUT_SIDE_PX // scale)
        raise OptionError(
            f"classification tiles of {side} px are too small: the classifier needs at least "
            f"{need} px per side (the region is {region.width}x{region.height} px, tiles "
            f"{tile_px} px); choose a larger region or classification tile size",
            "region",
            "classification_tile_px",
        )


def resolve(
    settings: SlideJobSettings, slide: Slide, model: TileModel, recorded: dict
) -> SlideJobSettings:
    """``settings`` with level, region and tile sizes filled in for this slide and model,
    checked against them (before anything is computed or written).

    An SR tile size left unset is the one the result there was started with (so it resumes
    on any device), else what suits the model's device.
    """
    slide = with_slide_mpp(slide, settings.slide_mpp)
    level, mpp, region = _level_and_region(settings, slide.metadata, model)
    sr_tile_px = settings.sr_tile_px
    if settings.super_resolution and sr_tile_px is None:
        recorded_px = (recorded.get("signature") or {}).get("sr_tile_px")
        sr_tile_px = recorded_px or default_sr_tile_px(model)
    classification_tile_px = settings.classification_tile_px
    if settings.classification:
        classification_tile_px = classification_tile_px or default_classification_tile_px(model)
        _check_classifier_input(region, classification_tile_px, model)
    # Read at a µm/px: the target becomes explicit, so the job does not depend on the model.
    return settings.replace(
        level=level,
        target_mpp=mpp,
        match_model_mpp=False,
        region=region,
        sr_tile_px=sr_tile_px,
        classification_tile_px=classification_tile_px,
    )


def view_of(slide: Slide, resolved: SlideJobSettings) -> LevelView:
    """The pixels resolved settings read: their level, resampled to their µm/px if any."""
    slide = with_slide_mpp(slide, resolved.slide_mpp)
    factor = 1.0
    if resolved.target_mpp is not None:
        level_mpp = slide.metadata.level_mpp(resolved.level)
        assert level_mpp is not None  # resolve() refused slides without a pixel size
        factor = resolved.target_mpp / level_mpp
    return level_view(slide, resolved.level, factor)
