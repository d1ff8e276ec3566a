"""Any slide or image -> a lazy multiscale RGB pyramid plus physical metadata.

Every level is a dask array (Y, X, 3) uint8 whose chunks follow the file's own
tiles, so nothing is read until a region is computed. TIFF-family files (SVS,
NDPI, generic and pyramidal TIFF, OME-TIFF) go through tifffile's zarr store,
OME-Zarr through zarr, PNG/JPEG through imageio (small images, read once).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import tifffile
import zarr

from ..geometry import PixelGrid
from .physical import Physical, level0_grid, ngff_physical, tiff_physical
from .rgb_level import RGBLevel, SlideError
from .tile_cache import with_decoded_tile_cache
from .zarr_nodes import RESULT_RECORD_KEY, attributes, ngff_attributes

SUPPORTED = ("svs", "ndpi", "tif/tiff", "ome.tif", "ome.zarr", "png", "jpg")
PLAIN_IMAGE_CHUNK_PX = 512


@dataclass(frozen=True)
class SlideMetadata:
    """Physical facts about a slide; ``mpp`` is microns per pixel at level 0 (None if unknown)."""

    path: Path
    format: str
    level_shapes: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: float | None = None
    objective_power: float | None = None
    extra: dict = field(default_factory=dict)
    #: Where level-0 pixel centres lie (µm where the file gives a unit; see io/physical.py).
    grid: PixelGrid = field(default_factory=PixelGrid)

    def level_mpp(self, level: int) -> float | None:
        return None if self.mpp is None else self.mpp * self.level_downsamples[level]


@dataclass
class Slide:
    """A lazy pyramid: ``levels[0]`` is full resolution, each (Y, X, 3) uint8."""

    levels: list[da.Array]
    metadata: SlideMetadata
    _store: object = None
    pixels: list[RGBLevel] | None = None  # the levels' pixels, read without a dask graph
    _tile_cache: object = None  # decoded file tiles (a zarr CacheStore), emptied on close

    @property
    def tile_sources(self) -> list:
        """What the engine reads tiles from, per level: the :class:`RGBLevel` objects where
        the slide has them (no dask graph per tile), else the dask levels."""
        return self.pixels or self.levels

    @property
    def shape(self) -> tuple[int, int]:
        return self.metadata.level_shapes[0]

    def close(self) -> None:
        if hasattr(self._store, "close"):
            self._store.close()
        if hasattr(self._tile_cache, "clear_cache"):
            from zarr.core.sync import sync

            sync(self._tile_cache.clear_cache())

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_tiff(path: Path) -> Slide:
    try:
        tif = tifffile.TiffFile(path)
    except Exception as error:  # tifffile raises several types for non-TIFF bytes
        raise SlideError(f"{path}: not a readable TIFF ({error})") from None
    try:
        series = tif.series[0]
        physical = tiff_physical(tif)
        tile_cache = with_decoded_tile_cache(series.aszarr())
        node = zarr.open(tile_cache, mode="r")
        arrays = (
            [node]
            if isinstance(node, zarr.Array)
            else [node[str(i)] for i in range(len(series.levels))]
        )
        pixels = [RGBLevel(a, series.axes, path) for a in arrays]
    except SlideError:
        tif.close()
        raise
    except Exception as error:
        tif.close()
        raise SlideError(f"{path}: cannot read the image data ({error})") from None
    levels = [p.as_dask() for p in pixels]
    return Slide(levels, _pyramid_metadata(path, physical, levels), tif, pixels, tile_cache)


def _open_ome_zarr(path: Path) -> Slide:
    try:
        group = zarr.open_group(path, mode="r")
    except Exception as error:
        raise SlideError(f"{path}: not an OME-Zarr image ({error})") from None
    record = attributes(group).get(RESULT_RECORD_KEY)
    if isinstance(record, dict) and not record.get("complete"):
        raise SlideError(
            f"{path}: an unfinished napari-shisrcnet result; rerun the command that made it "
            "to resume it"
        )
    try:
        multiscale = ngff_attributes(group)["multiscales"][0]
    except Exception as error:
        raise SlideError(f"{path}: not an OME-Zarr image ({error})") from None
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in multiscale["axes"]).upper()
    pixels = [RGBLevel(group[d["path"]], axes, path) for d in multiscale["datasets"]]
    levels = [p.as_dask() for p in pixels]
    physical = ngff_physical(multiscale, axes)
    return Slide(levels, _pyramid_metadata(path, physical, levels), pixels=pixels)


def _open_plain_image(path: Path) -> Slide:
    import imageio.v3 as iio

    try:
        pixels = np.asarray(iio.imread(path))
    except Exception as error:
        raise SlideError(f"{path}: cannot decode the image ({error})") from None
    axes = "YX" if pixels.ndim == 2 else "YXS"
    if pixels.ndim not in (2, 3):
        raise SlideError(f"{path}: has {pixels.ndim} dimensions; expected a 2D image")
    rgb = RGBLevel(pixels, axes, path)
    level = rgb.as_dask(PLAIN_IMAGE_CHUNK_PX)
    physical = Physical(path.suffix.lstrip(".").lower())
    return Slide([level], _pyramid_metadata(path, physical, [level]), pixels=[rgb])


def _pyramid_metadata(path: Path, physical: Physical, levels) -> SlideMetadata:
    shapes = tuple((int(a.shape[0]), int(a.shape[1])) for a in levels)
    downsamples = tuple(shapes[0][1] / s[1] for s in shapes)
    return SlideMetadata(
        path,
        physical.format,
        shapes,
        downsamples,
        physical.mpp,
        physical.objective_power,
        grid=level0_grid(physical),
    )


def slide_from_arrays(
    levels, mpp: float | None = None, name: str = "<array>", grid: PixelGrid | None = None
) -> Slide:
    """A Slide over in-memory or lazy (Y, X, 3) uint8 arrays (finest first); ``grid``: where
    level-0 pixel centres lie (default: µm from the origin if ``mpp`` is given)."""
    wrapped = []
    for array in levels:
        if array.ndim != 3 or array.shape[-1] not in (3, 4) or array.dtype != np.uint8:
            raise SlideError(
                f"{name}: expected (Y, X, 3) uint8 RGB, got shape {array.shape} {array.dtype}"
            )
        lazy = array if isinstance(array, da.Array) else da.from_array(array, chunks=(512, 512, -1))
        wrapped.append(lazy[..., :3])
    physical = Physical("array", mpp, None, grid)
    return Slide(wrapped, _pyramid_metadata(Path(name), physical, wrapped))


#: File name endings -> how to open them (the reader, the CLI and napari.yaml use this
#: one table; a test checks the manifest against it).
OPENERS = {
    **dict.fromkeys((".svs", ".ndpi", ".tif", ".tiff", ".scn", ".bif"), _open_tiff),
    ".zarr": _open_ome_zarr,
    **dict.fromkeys((".png", ".jpg", ".jpeg"), _open_plain_image),
}


def slide_suffixes() -> tuple[str, ...]:
    """File name endings :func:`open_slide` opens (lower case)."""
    return tuple(OPENERS)


def _is_zarr_folder(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in (".zattrs", "zarr.json", ".zgroup"))


def open_slide(path: str | os.PathLike | bytes) -> Slide:
    """Open a slide or image lazily.

    Parameters
    ----------
    path : str or os.PathLike
        SVS, NDPI, (pyramidal / OME-) TIFF, OME-Zarr, PNG or JPEG (:func:`slide_suffixes`).

    Returns
    -------
    Slide
        Every pyramid level as a lazy (Y, X, 3) uint8 dask array, and the slide's metadata
        (level shapes and downsamples, µm/px, objective power). Use it as a context manager
        to close the file.

    Raises
    ------
    SlideError
        One line naming the file and the problem.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str | os.PathLike):
        raise SlideError(f"{path!r}: a slide is given by its path (str or os.PathLike)")
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise SlideError(f"{path}: file not found")
    if _is_zarr_folder(path):
        return _open_ome_zarr(path)
    opener = next((OPENERS[s] for s in OPENERS if name.endswith(s)), None)
    if path.is_dir() and opener is not _open_ome_zarr:
        raise SlideError(f"{path}: is a folder, not a slide (supported: {', '.join(SUPPORTED)})")
    if opener is None:
        raise SlideError(f"{path}: unsupported file type (supported: {', '.join(SUPPORTED)})")
    return opener(path)


__all__ = ["Slide", "SlideError", "SlideMetadata", "open_slide", "slide_from_arrays"]
