"""Results -> napari LayerDataTuples placed exactly over their source (no Qt here).

``grid`` is where the source level's pixel centres lie in the viewer's world; an output
whose pixel spans ``step`` source pixels starting at source pixel ``(region.y, region.x)``
lies on ``grid.coarser(step, (region.y, region.x))`` (see :mod:`napari_shisrcnet.geometry`).
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..classes import class_colors, positive_class_index
from ..engine.classification import TileClassification
from ..geometry import PixelGrid, Region, block_mean

#: Outputs larger than this (per side) get a pyramid, so napari stays fluid.
MULTISCALE_ABOVE_PX = 4096
#: Chunk side of the lazy per-pixel tile maps (a chunk is made when napari shows it).
TILE_PYRAMID_CHUNK_PX = 1024


def pyramid(image: np.ndarray) -> list[np.ndarray] | np.ndarray:
    """The image, or a list halving it while larger than ``MULTISCALE_ABOVE_PX``."""
    if max(image.shape[:2]) <= MULTISCALE_ABOVE_PX:
        return image
    levels = [image]
    while max(levels[-1].shape[:2]) > 1024:
        levels.append(block_mean(levels[-1], 2))
    return levels


def _tiles_at_step(values: np.ndarray, tile_px: int, shape_px: tuple[int, int], step: int):
    """``values`` (one per tile) on a grid of ``step`` level pixels over ``shape_px``, lazily:
    each pixel takes the tile under its first level pixel."""
    shape = (-(-shape_px[0] // step), -(-shape_px[1] // step))

    def block(block_info=None) -> np.ndarray:
        (y0, y1), (x0, x1) = block_info[None]["array-location"]
        rows = np.arange(y0, y1) * step // tile_px
        columns = np.arange(x0, x1) * step // tile_px
        return values[np.ix_(rows, columns)]

    chunks = da.core.normalize_chunks((TILE_PYRAMID_CHUNK_PX,) * 2, shape)
    return da.map_blocks(block, chunks=chunks, dtype=values.dtype, meta=values[:0, :0])


def clipped_tile_pyramid(values: np.ndarray, tile_px: int, shape_px: tuple[int, int]) -> list:
    """Per-tile values as a lazy pyramid whose level 0 has one pixel per level pixel of a
    ``shape_px`` region, so edge tiles stop at the region's edge instead of overhanging it;
    levels halve down to the tile map itself. napari computes only what it shows."""
    levels, step = [], 1
    while step < tile_px:
        levels.append(_tiles_at_step(values, tile_px, shape_px, step))
        step *= 2
    return [*levels, values]


def sr_layer(sr: np.ndarray, grid: PixelGrid, region: Region, scale: int, name: str) -> tuple:
    """An RGB image layer of ``sr`` (``region`` of the source level, upscaled ``scale``x)."""
    data = pyramid(sr)
    kwargs = {
        "name": name,
        "rgb": True,
        "multiscale": isinstance(data, list),
        "contrast_limits": (0, 255),
        **grid.coarser(1.0 / scale, (region.y, region.x)).layer_keywords(),
        "metadata": {"napari_shisrcnet": {"region_yxhw": region.yxhw, "scale": scale}},
    }
    return (data, kwargs, "image")


def _tile_features(result: TileClassification, tissue: np.ndarray) -> tuple[dict, np.ndarray]:
    """A features table (row 0: background) and the class of each tissue tile."""
    names = result.class_names
    classes = result.label_map.ravel()[tissue] - 1
    probabilities = result.probabilities.reshape(-1, len(names))[tissue]
    features = {
        "index": np.arange(tissue.size + 1),
        "class": ["background", *(names[c] for c in classes)],
        "confidence": np.concatenate([[np.nan], probabilities.max(axis=1)]).round(4),
    }
    for index, class_name in enumerate(names):
        features[f"p_{class_name}"] = np.concatenate([[np.nan], probabilities[:, index]]).round(4)
    return features, classes


def classification_layers(
    result: TileClassification,
    grid: PixelGrid,
    region: Region,
    name: str,
    heatmap: bool = True,
    opacity: float = 0.5,
) -> list[tuple]:
    """A Labels layer of tiles coloured by class, and an optional probability heatmap.

    Each tissue tile gets its own label value (background 0), with a features row
    (class, confidence, every probability): hovering a tile shows its class and
    probabilities in the status bar. Colours are fixed per class.
    """
    from napari.utils.colormaps import DirectLabelColormap

    names = result.class_names
    class_rgba = [(*(c / 255 for c in rgb), 1.0) for rgb in class_colors(names)]
    tissue = np.flatnonzero(result.tissue.ravel())
    tile_labels = np.zeros(result.grid.shape, np.uint32)
    tile_labels.ravel()[tissue] = np.arange(1, tissue.size + 1)
    features, classes = _tile_features(result, tissue)
    colors = {0: (0.0, 0.0, 0.0, 0.0), None: (0.0, 0.0, 0.0, 0.0)}
    colors.update({i + 1: class_rgba[c] for i, c in enumerate(classes)})
    tile_px, shape_px = result.grid.tile_px, (region.height, region.width)
    where = grid.coarser(1, (region.y, region.x)).layer_keywords()  # level-pixel grid
    metadata = {"class_names": list(names), "tile_px": tile_px}
    labels = {
        "name": f"{name} classes",
        "multiscale": True,
        "colormap": DirectLabelColormap(color_dict=colors),
        "features": features,
        "opacity": opacity,
        "metadata": {"napari_shisrcnet": {**metadata, "class_map": result.label_map}},
        **where,
    }
    layers = [(clipped_tile_pyramid(tile_labels, tile_px, shape_px), labels, "labels")]
    if heatmap:
        layers.append(_heatmap(result, name, opacity, where, shape_px))
    return layers


def _heatmap(result: TileClassification, name: str, opacity: float, where: dict, shape_px) -> tuple:
    """The probability of the positive class ("malignant", else the last) per tile."""
    names = result.class_names
    positive = positive_class_index(names)
    values = np.ascontiguousarray(result.probabilities[..., positive])
    return (
        clipped_tile_pyramid(values, result.grid.tile_px, shape_px),
        {
            "name": f"{name} p({names[positive]})",
            "multiscale": True,
            "colormap": "inferno",
            "contrast_limits": (0.0, 1.0),
            "opacity": opacity,
            "visible": False,
            **where,
        },
        "image",
    )


def class_summary(result: TileClassification, tile_um: float | None) -> str:
    """The overlay's legend: a swatch of each class's colour, its tiles and area (rich
    text, one line per class)."""
    colours = dict(zip(result.class_names, class_colors(result.class_names), strict=True))
    lines = []
    for name, count in result.counts().items():
        area = f", {count * (tile_um / 1000) ** 2:.3f} mm²" if tile_um else ""
        rgb = colours.get(name)
        swatch = "&#9633;" if rgb is None else _swatch(rgb)  # background: an empty square
        lines.append(f"{swatch} {name}: {count} tiles{area}")
    return "<br>".join(lines)


def _swatch(rgb: tuple[int, int, int]) -> str:
    return '<span style="color:#{:02x}{:02x}{:02x}">&#9632;</span>'.format(*rgb)
