"""Results -> napari LayerDataTuples placed exactly over their source (no Qt here).

``grid`` is where the source level's pixel centres lie in the viewer's world; an output
whose pixel spans ``step`` source pixels starting at source pixel ``(region.y, region.x)``
lies on ``grid.coarser(step, (region.y, region.x))`` (see :mod:`napari_shisrcnet.geometry`).
"""

from __future__ import annotations

import numpy as np

from ..classes import class_colors
from ..engine.classification import TileClassification
from ..geometry import PixelGrid, Region, block_mean

#: Outputs larger than this (per side) get a pyramid, so napari stays fluid.
MULTISCALE_ABOVE_PX = 4096


def pyramid(image: np.ndarray) -> list[np.ndarray] | np.ndarray:
    """The image, or a list halving it while larger than ``MULTISCALE_ABOVE_PX``."""
    if max(image.shape[:2]) <= MULTISCALE_ABOVE_PX:
        return image
    levels = [image]
    while max(levels[-1].shape[:2]) > 1024:
        levels.append(block_mean(levels[-1], 2))
    return levels


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
    where = grid.coarser(result.grid.tile_px, (region.y, region.x)).layer_keywords()
    metadata = {"class_names": list(names), "tile_px": result.grid.tile_px}
    labels = {
        "name": f"{name} classes",
        "colormap": DirectLabelColormap(color_dict=colors),
        "features": features,
        "opacity": opacity,
        "metadata": {"napari_shisrcnet": {**metadata, "class_map": result.label_map}},
        **where,
    }
    layers = [(tile_labels, labels, "labels")]
    if heatmap:
        layers.append(_heatmap(result, name, opacity, where))
    return layers


def _heatmap(result: TileClassification, name: str, opacity: float, where: dict) -> tuple:
    """The probability of the positive class ("malignant", else the last) per tile."""
    names = result.class_names
    positive = names.index("malignant") if "malignant" in names else len(names) - 1
    return (
        result.probabilities[..., positive],
        {
            "name": f"{name} p({names[positive]})",
            "colormap": "inferno",
            "contrast_limits": (0.0, 1.0),
            "opacity": opacity,
            "visible": False,
            **where,
        },
        "image",
    )


def class_summary(result: TileClassification, tile_um: float | None) -> str:
    """Tiles and area per class, one line each."""
    counts = result.counts()
    lines = []
    for name, count in counts.items():
        area = f", {count * (tile_um / 1000) ** 2:.3f} mm²" if tile_um else ""
        lines.append(f"{name}: {count} tiles{area}")
    return "\n".join(lines)
