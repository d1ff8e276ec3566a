"""Per-tile results as a CSV table and as GeoJSON for QuPath."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..engine.classification import TileClassification


def tile_rows(result: TileClassification, level_downsample: float, mpp: float | None) -> list[dict]:
    """One dict per tissue tile: grid position, level-0 pixel box, class and probabilities."""
    rows = []
    probabilities, labels = result.probabilities, result.label_map
    for tile in result.grid.tiles():
        if labels[tile.row, tile.column] == 0:
            continue
        y0, y1, x0, x1 = (v * level_downsample for v in tile.core)
        p = probabilities[tile.row, tile.column]
        row: dict[str, float | str] = {
            "row": tile.row,
            "column": tile.column,
            "x_px": round(x0, 2),
            "y_px": round(y0, 2),
            "width_px": round(x1 - x0, 2),
            "height_px": round(y1 - y0, 2),
        }
        if mpp is not None:
            row.update(x_um=round(x0 * mpp, 3), y_um=round(y0 * mpp, 3))
        row.update(
            tissue_fraction=round(float(result.tissue_fraction[tile.row, tile.column]), 4),
            class_name=result.class_names[int(labels[tile.row, tile.column]) - 1],
            confidence=round(float(p.max()), 6),
        )
        row.update(
            {f"p_{name}": round(float(v), 6) for name, v in zip(result.class_names, p, strict=True)}
        )
        rows.append(row)
    return rows


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_tile_csv(path: str | os.PathLike, rows: list[dict], class_names) -> Path:
    path = Path(path)
    fields = ["row", "column", "x_px", "y_px", "width_px", "height_px"]
    if rows and "x_um" in rows[0]:
        fields += ["x_um", "y_um"]
    fields += ["tissue_fraction", "class_name", "confidence", *(f"p_{n}" for n in class_names)]
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)
    return path


def write_tile_geojson(path: str | os.PathLike, rows: list[dict], colors: dict[str, tuple]) -> Path:
    """A FeatureCollection of tile polygons in level-0 pixels, with QuPath classifications."""
    features = []
    for row in rows:
        x0, y0 = row["x_px"], row["y_px"]
        x1, y1 = x0 + row["width_px"], y0 + row["height_px"]
        name = row["class_name"]
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                },
                "properties": {
                    "objectType": "tile",
                    "classification": {"name": name, "color": list(colors[name])},
                    "measurements": {
                        k.replace("p_", "probability "): v
                        for k, v in row.items()
                        if k.startswith("p_")
                    },
                },
            }
        )
    path = Path(path)
    _atomic_write_text(path, json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def read_tile_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a tile CSV written by :func:`write_tile_csv`, numbers as numbers."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key != "class_name":
                row[key] = int(value) if key in ("row", "column") else float(value)
    return rows
