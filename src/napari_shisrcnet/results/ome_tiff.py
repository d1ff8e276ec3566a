"""Pyramidal OME-TIFF copies of finished OME-Zarr results (for QuPath and other viewers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from ..io.physical import ngff_physical
from ..io.zarr_nodes import array_at, attributes

TIFF_TILE_PX = 512


def _tiles(level: zarr.Array) -> Iterator[np.ndarray]:
    """Row-major (512, 512, 3) tiles of a (3, Y, X) array; tifffile zero-pads edge tiles."""
    _, height, width = level.shape
    for y in range(0, height, TIFF_TILE_PX):
        for x in range(0, width, TIFF_TILE_PX):
            tile = np.asarray(level[:, y : y + TIFF_TILE_PX, x : x + TIFF_TILE_PX])
            yield tile.transpose(1, 2, 0)


def _ome_metadata(multiscale: dict) -> dict[str, Any]:
    """Pixel size and position in µm (where the result has them): OME positions the
    image's top-left corner, half a pixel out from the first pixel's centre."""
    metadata: dict[str, Any] = {"axes": "YXS"}
    grid = ngff_physical(multiscale, "CYX").grid
    if grid is None or grid.units is None or grid.units[0] != "micrometer":
        return metadata
    (size_y, size_x), (centre_y, centre_x) = grid.scale, grid.translate
    metadata.update(
        PhysicalSizeX=size_x,
        PhysicalSizeXUnit="µm",
        PhysicalSizeY=size_y,
        PhysicalSizeYUnit="µm",
        Plane={
            "PositionX": [centre_x - size_x / 2],
            "PositionXUnit": ["µm"],
            "PositionY": [centre_y - size_y / 2],
            "PositionYUnit": ["µm"],
        },
    )
    return metadata


def write_ome_tiff(zarr_path: str | os.PathLike, tiff_path: str | os.PathLike) -> Path:
    """Write the image pyramid of a finished result as a tiled, deflate-compressed OME-TIFF."""
    group = zarr.open_group(zarr_path, mode="r")
    multiscale = attributes(group)["multiscales"][0]
    metadata = _ome_metadata(multiscale)
    levels = [array_at(group, d["path"]) for d in multiscale["datasets"]]
    tiff_path = Path(tiff_path)
    temporary = tiff_path.with_name(f".{tiff_path.name}.tmp")
    options: dict[str, Any] = dict(
        tile=(TIFF_TILE_PX, TIFF_TILE_PX), dtype="uint8", photometric="rgb", compression="zlib"
    )
    with tifffile.TiffWriter(temporary, bigtiff=True, ome=True) as tif:
        for index, level in enumerate(levels):
            shape = (level.shape[1], level.shape[2], 3)
            if index == 0:
                tif.write(
                    _tiles(level),
                    shape=shape,
                    subifds=len(levels) - 1,
                    metadata=metadata,
                    **options,
                )
            else:
                tif.write(_tiles(level), shape=shape, subfiletype=1, metadata=None, **options)
    os.replace(temporary, tiff_path)
    return tiff_path
