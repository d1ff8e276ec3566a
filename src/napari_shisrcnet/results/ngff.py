"""NGFF 0.4 metadata for image pyramids and labels: the one writer for the engine's results
and for napari's File > Save.

Level ``L`` of a pyramid is level 0 block-averaged ``2**L`` times, so its pixels lie on
``grid.coarser(2**L)`` (the pixel-centre convention of :mod:`napari_shisrcnet.geometry`).
ome-zarr-py writes the JSON, so its own checks apply.
"""

from __future__ import annotations

import zarr
from ome_zarr.format import FormatV04
from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

from ..geometry import PixelGrid
from ..io.zarr_nodes import attributes, group_at

FORMAT = FormatV04()
_RGB_CHANNELS = (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))


def axes(unit: str | None, channels: bool) -> list[dict]:
    """NGFF axes (c,) y, x; the spatial unit only where one is known."""
    spatial = {"type": "space", **({"unit": unit} if unit else {})}
    yx = [{"name": "y", **spatial}, {"name": "x", **spatial}]
    return [{"name": "c", "type": "channel"}, *yx] if channels else yx


def spatial_unit(grid: PixelGrid) -> str | None:
    """The grid's unit as NGFF names it, or None for plain pixels."""
    unit = str(grid.units[-1]) if grid.units else None
    return None if unit in (None, "pixel", "None") else unit


def pyramid_datasets(grid: PixelGrid, n_levels: int, channels: bool) -> list[dict]:
    """``datasets`` entries for levels 0..n_levels-1 whose level 0 lies on ``grid``."""
    lead_scale, lead_shift = ([1.0], [0.0]) if channels else ([], [])
    datasets = []
    for level in range(n_levels):
        level_grid = grid.coarser(2**level)
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [*lead_scale, *level_grid.scale]},
                    {"type": "translation", "translation": [*lead_shift, *level_grid.translate]},
                ],
            }
        )
    return datasets


def write_image_metadata(
    group: zarr.Group, grid: PixelGrid, n_levels: int, name: str, channels: bool, rgb: bool
) -> None:
    """``multiscales`` (and, for RGB, ``omero``) for arrays ``0..n_levels-1`` of ``group``;
    ``channels``: the arrays are (c, y, x), else (y, x)."""
    datasets = pyramid_datasets(grid, n_levels, channels)
    write_multiscales_metadata(
        group, datasets, fmt=FORMAT, axes=axes(spatial_unit(grid), channels), name=name
    )
    if rgb:
        group.attrs["omero"] = {
            "channels": [
                {"label": c, "color": rgb, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
                for c, rgb in _RGB_CHANNELS
            ],
            "rdefs": {"model": "color"},
        }


def write_labels_metadata(
    labels: zarr.Group,
    name: str,
    grid: PixelGrid,
    n_levels: int,
    colors_rgba: dict[int, tuple[int, int, int, int]] | None = None,
    properties: dict[int, dict] | None = None,
    channels: bool = False,
) -> None:
    """NGFF labels ``labels/<name>`` (arrays ``0..n_levels-1`` already written, (1, y, x)
    with ``channels``), with colours and properties per label value where given."""
    # ome-zarr-py appends ``name`` to the group's list: leave it out first (once only).
    labels.attrs["labels"] = [n for n in attributes(labels).get("labels", []) if n != name]
    write_image_metadata(group_at(labels, name), grid, n_levels, name, channels=channels, rgb=False)
    write_label_metadata(
        labels,
        name,
        colors=[{"label-value": v, "rgba": list(c)} for v, c in (colors_rgba or {}).items()],
        properties=[{"label-value": v, **p} for v, p in (properties or {}).items()],
        fmt=FORMAT,
        source={"image": "../../"},
    )
