"""Where a slide's pixels lie physically: pixel size, objective power, position.

What each format records: Aperio's ImageDescription (``MPP``, ``AppMag``), TIFF resolution
tags, OME-XML (``PhysicalSizeX`` and the first plane's ``PositionX/Y``: the top-left corner
of the image), NGFF coordinate transformations (scale and translation of level 0: the
first pixel's centre). Everything comes out as a level-0 :class:`PixelGrid` in micrometres
where the file gives a length unit, else in the file's own units (or plain pixels): no unit
is ever invented.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

import tifffile

from ..geometry import PixelGrid, physical_grid

LENGTH_UNIT_TO_UM = {
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
MICROMETRES = ("micrometer", "micrometer")


@dataclass(frozen=True)
class Physical:
    """What a file says about its level 0: format, µm/px, objective power, pixel grid."""

    format: str
    mpp: float | None = None
    objective_power: float | None = None
    grid: PixelGrid | None = None  # None: level-0 pixels in µm from (0, 0), or plain pixels


def aperio_metadata(description: str) -> tuple[float | None, float | None]:
    fields = dict(re.findall(r"\|\s*([^=|]+?)\s*=\s*([^|]*)", description))

    def number(key: str) -> float | None:
        try:
            return float(fields[key])
        except (KeyError, ValueError):
            return None

    return number("MPP"), number("AppMag")


def _ome_grid(ome_xml: str) -> tuple[float | None, PixelGrid | None]:
    root = ElementTree.fromstring(ome_xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
    size_x = None if pixels is None else pixels.get("PhysicalSizeX")
    if pixels is None or size_x is None:
        return None, None
    mpp = float(size_x) * LENGTH_UNIT_TO_UM.get(pixels.get("PhysicalSizeXUnit", "µm"), 1.0)
    plane = next((e for e in pixels.iter() if e.tag.endswith("Plane")), None)
    if plane is None or plane.get("PositionX") is None or plane.get("PositionY") is None:
        return mpp, None
    corner = [
        float(plane.get(f"Position{axis}") or 0.0)
        * LENGTH_UNIT_TO_UM.get(plane.get(f"Position{axis}Unit", "µm"), 1.0)
        for axis in "YX"
    ]
    # OME positions the image's corner; a pixel's centre lies half a pixel in.
    centre = (corner[0] + mpp / 2, corner[1] + mpp / 2)
    return mpp, PixelGrid((mpp, mpp), centre, MICROMETRES)


def tiff_resolution_mpp(page: tifffile.TiffPage) -> float | None:
    tag = page.tags.get("XResolution")
    unit = page.tags.get("ResolutionUnit")
    if tag is None or unit is None:
        return None
    numerator, denominator = tag.value
    if not numerator or not denominator:
        return None
    per_unit = {2: 25_400.0, 3: 10_000.0}.get(int(unit.value))  # inch, centimetre in microns
    return None if per_unit is None else per_unit * denominator / numerator


def tiff_physical(tif: tifffile.TiffFile) -> Physical:
    page = tif.pages.first
    if tif.is_svs:
        mpp, power = aperio_metadata(page.description)
        return Physical("svs", mpp, power)
    if tif.is_ndpi:
        power = (page.ndpi_tags or {}).get("Magnification")
        return Physical("ndpi", tiff_resolution_mpp(page), power)
    if tif.is_ome:
        ome_xml = tif.ome_metadata
        assert ome_xml is not None  # is_ome: the first page describes itself in OME-XML
        mpp, grid = _ome_grid(ome_xml)
        return Physical("ome-tiff", mpp, None, grid)
    return Physical("tiff", tiff_resolution_mpp(page), None)


def ngff_physical(multiscale: dict, axes: str) -> Physical:
    """Level 0's grid from NGFF ``multiscales[0]``; µm/px only where the axes name a unit."""
    y, x = axes.index("Y"), axes.index("X")
    scale, translate = [1.0] * len(axes), [0.0] * len(axes)
    for transform in multiscale["datasets"][0].get("coordinateTransformations", []):
        if transform.get("type") == "scale":
            scale = [float(v) for v in transform["scale"]]
        elif transform.get("type") == "translation":
            translate = [float(v) for v in transform["translation"]]
    x_axis = [a for a in multiscale["axes"] if isinstance(a, dict) and a["name"] == "x"]
    unit = x_axis[0].get("unit") if x_axis else None
    factor = LENGTH_UNIT_TO_UM.get(unit) if unit else None
    if factor is None:  # no (length) unit: the file's own units, named as such if any
        units = (unit, unit) if unit else None
        return Physical(
            "ome-zarr",
            None,
            None,
            PixelGrid((scale[y], scale[x]), (translate[y], translate[x]), units),
        )
    grid = PixelGrid(
        (scale[y] * factor, scale[x] * factor),
        (translate[y] * factor, translate[x] * factor),
        MICROMETRES,
    )
    return Physical("ome-zarr", scale[x] * factor, None, grid)


def level0_grid(physical: Physical) -> PixelGrid:
    """The file's grid, or µm (or pixels) from the origin where it gives no position."""
    return physical.grid or physical_grid(physical.mpp)
