"""Any slide or image -> a lazy multiscale RGB pyramid plus physical metadata.

Every level is a dask array (Y, X, 3) uint8 whose chunks follow the file's own
tiles, so nothing is read until a region is computed. TIFF-family files (SVS,
NDPI, generic and pyramidal TIFF, OME-TIFF) go through tifffile's zarr store,
OME-Zarr through zarr, PNG/JPEG through imageio (small images, read once).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import tifffile
import zarr

from .rgb_level import RGBLevel, SlideError
from .tile_cache import with_decoded_tile_cache
from .zarr_nodes import RESULT_RECORD_KEY, attributes

SUPPORTED = ("svs", "ndpi", "tif/tiff", "ome.tif", "ome.zarr", "png", "jpg")
PLAIN_IMAGE_CHUNK_PX = 512
_LENGTH_UNIT_TO_UM = {
    "micrometer": 1.0,
    "µm": 1.0,
    "um": 1.0,
    "nanometer": 1e-3,
    "nm": 1e-3,
    "millimeter": 1e3,
    "mm": 1e3,
    "centimeter": 1e4,
    "cm": 1e4,
    "meter": 1e6,
    "m": 1e6,
}


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


def _aperio_metadata(description: str) -> tuple[float | None, float | None]:
    fields = dict(re.findall(r"\|\s*([^=|]+?)\s*=\s*([^|]*)", description))

    def number(key: str) -> float | None:
        try:
            return float(fields[key])
        except (KeyError, ValueError):
            return None

    return number("MPP"), number("AppMag")


def _ome_mpp(ome_xml: str) -> float | None:
    root = ElementTree.fromstring(ome_xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
    size_x = None if pixels is None else pixels.get("PhysicalSizeX")
    if pixels is None or size_x is None:
        return None
    unit = pixels.get("PhysicalSizeXUnit", "µm")
    return float(size_x) * _LENGTH_UNIT_TO_UM.get(unit, 1.0)


def _tiff_resolution_mpp(page: tifffile.TiffPage) -> float | None:
    tag = page.tags.get("XResolution")
    unit = page.tags.get("ResolutionUnit")
    if tag is None or unit is None:
        return None
    numerator, denominator = tag.value
    if not numerator or not denominator:
        return None
    per_unit = {2: 25_400.0, 3: 10_000.0}.get(int(unit.value))  # inch, centimetre in microns
    return None if per_unit is None else per_unit * denominator / numerator


def _tiff_physical(tif: tifffile.TiffFile) -> tuple[str, float | None, float | None]:
    page = tif.pages.first
    if tif.is_svs:
        mpp, power = _aperio_metadata(page.description)
        return "svs", mpp, power
    if tif.is_ndpi:
        power = (page.ndpi_tags or {}).get("Magnification")
        return "ndpi", _tiff_resolution_mpp(page), power
    if tif.is_ome:
        ome_xml = tif.ome_metadata
        assert ome_xml is not None  # is_ome: the first page describes itself in OME-XML
        return "ome-tiff", _ome_mpp(ome_xml), None
    return "tiff", _tiff_resolution_mpp(page), None


def _open_tiff(path: Path) -> Slide:
    try:
        tif = tifffile.TiffFile(path)
    except Exception as error:  # tifffile raises several types for non-TIFF bytes
        raise SlideError(f"{path}: not a readable TIFF ({error})") from None
    try:
        series = tif.series[0]
        file_format, mpp, power = _tiff_physical(tif)
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
    metadata = _pyramid_metadata(path, file_format, levels, mpp, power)
    return Slide(levels, metadata, tif, pixels, tile_cache)


def _ome_zarr_attributes(group: zarr.Group) -> dict:
    attrs = attributes(group)
    return attrs.get("ome", attrs)  # NGFF 0.5 nests everything under "ome"


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
        multiscale = _ome_zarr_attributes(group)["multiscales"][0]
    except Exception as error:
        raise SlideError(f"{path}: not an OME-Zarr image ({error})") from None
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in multiscale["axes"]).upper()
    datasets = multiscale["datasets"]
    pixels = [RGBLevel(group[d["path"]], axes, path) for d in datasets]
    levels = [p.as_dask() for p in pixels]
    mpp = None
    x_axis = [a for a in multiscale["axes"] if isinstance(a, dict) and a["name"] == "x"]
    unit = x_axis[0].get("unit", "micrometer") if x_axis else "micrometer"
    for transform in datasets[0].get("coordinateTransformations", []):
        if transform.get("type") == "scale":
            mpp = float(transform["scale"][axes.index("X")]) * _LENGTH_UNIT_TO_UM.get(unit, 1.0)
    return Slide(levels, _pyramid_metadata(path, "ome-zarr", levels, mpp, None), pixels=pixels)


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
    file_format = path.suffix.lstrip(".").lower()
    return Slide([level], _pyramid_metadata(path, file_format, [level], None, None), pixels=[rgb])


def _pyramid_metadata(path, file_format, levels, mpp, power) -> SlideMetadata:
    shapes = tuple((int(a.shape[0]), int(a.shape[1])) for a in levels)
    downsamples = tuple(shapes[0][1] / s[1] for s in shapes)
    return SlideMetadata(path, file_format, shapes, downsamples, mpp, power)


def slide_from_arrays(levels, mpp: float | None = None, name: str = "<array>") -> Slide:
    """A Slide over in-memory or lazy (Y, X, 3) uint8 arrays (finest first)."""
    wrapped = []
    for array in levels:
        if array.ndim != 3 or array.shape[-1] not in (3, 4) or array.dtype != np.uint8:
            raise SlideError(
                f"{name}: expected (Y, X, 3) uint8 RGB, got shape {array.shape} {array.dtype}"
            )
        lazy = array if isinstance(array, da.Array) else da.from_array(array, chunks=(512, 512, -1))
        wrapped.append(lazy[..., :3])
    return Slide(wrapped, _pyramid_metadata(Path(name), "array", wrapped, mpp, None))


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
