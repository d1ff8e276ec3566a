"""Results -> napari LayerDataTuples placed exactly over their source (no Qt here).

A source layer's data pixel (i, j) sits at world ``translate + (i, j) * scale``. An
output whose pixel spans ``step`` source pixels starting at source pixel ``origin``
has its first pixel centre at source coordinate ``origin + (step - 1) / 2``.
"""

from __future__ import annotations

import numpy as np

from ..classes import class_colors
from ..engine.classification import TileClassification
from ..engine.tiling import Region

#: Outputs larger than this (per side) get a pyramid, so napari stays fluid.
MULTISCALE_ABOVE_PX = 4096


def placement(source_scale, source_translate, region: Region, step: float) -> dict:
    """``scale`` and ``translate`` for an output of ``step`` source pixels per pixel."""
    sy, sx = (float(s) for s in source_scale[-2:])
    ty, tx = (float(t) for t in source_translate[-2:])
    offset = (step - 1.0) / 2.0
    return {
        "scale": (sy * step, sx * step),
        "translate": (ty + (region.y + offset) * sy, tx + (region.x + offset) * sx),
    }


def pyramid(image: np.ndarray) -> list[np.ndarray] | np.ndarray:
    """The image, or a list halving it while larger than ``MULTISCALE_ABOVE_PX``."""
    if max(image.shape[:2]) <= MULTISCALE_ABOVE_PX:
        return image
    levels = [image]
    while max(levels[-1].shape[:2]) > 1024:
        previous = levels[-1][: levels[-1].shape[0] // 2 * 2, : levels[-1].shape[1] // 2 * 2]
        half = previous.reshape(previous.shape[0] // 2, 2, previous.shape[1] // 2, 2, 3).mean(
            (1, 3)
        )
        levels.append((half + 0.5).astype(np.uint8))
    return levels


def sr_layer(sr: np.ndarray, source, region: Region, scale: int, name: str) -> tuple:
    data = pyramid(sr)
    kwargs = {
        "name": name,
        "rgb": True,
        "multiscale": isinstance(data, list),
        "contrast_limits": (0, 255),
        **placement(source.scale, source.translate, region, 1.0 / scale),
        "metadata": {
            "napari_shisrcnet": {
                "region_yxhw": [region.y, region.x, region.height, region.width],
                "scale": scale,
            }
        },
    }
    if getattr(source, "units", None) is not None:
        kwargs["units"] = tuple(str(u) for u in source.units)[-2:]
    return (data, kwargs, "image")


def classification_layers(
    result: TileClassification,
    source,
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
    classes = result.label_map.ravel()[tissue] - 1
    probabilities = result.probabilities.reshape(-1, len(names))[tissue]
    colors = {0: (0.0, 0.0, 0.0, 0.0), None: (0.0, 0.0, 0.0, 0.0)}
    colors.update({i + 1: class_rgba[c] for i, c in enumerate(classes)})
    features = {
        "index": np.arange(tissue.size + 1),
        "class": ["background", *(names[c] for c in classes)],
        "confidence": np.concatenate([[np.nan], probabilities.max(axis=1)]).round(4),
    }
    for index, class_name in enumerate(names):
        features[f"p_{class_name}"] = np.concatenate([[np.nan], probabilities[:, index]]).round(4)
    where = placement(source.scale, source.translate, region, result.grid.tile_px)
    if getattr(source, "units", None) is not None:
        where["units"] = tuple(str(u) for u in source.units)[-2:]
    labels = (
        tile_labels,
        {
            "name": f"{name} classes",
            "colormap": DirectLabelColormap(color_dict=colors),
            "features": features,
            "opacity": opacity,
            "metadata": {
                "napari_shisrcnet": {
                    "class_names": list(names),
                    "tile_px": result.grid.tile_px,
                    "class_map": result.label_map,
                }
            },
            **where,
        },
        "labels",
    )
    layers = [labels]
    if heatmap:
        positive = names.index("malignant") if "malignant" in names else len(names) - 1
        layers.append(
            (
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
        )
    return layers


def class_summary(result: TileClassification, tile_um: float | None) -> str:
    """Tiles and area per class, one line each."""
    counts = result.counts()
    lines = []
    for name, count in counts.items():
        area = f", {count * (tile_um / 1000) ** 2:.3f} mm²" if tile_um else ""
        lines.append(f"{name}: {count} tiles{area}")
    return "\n".join(lines)
