"""Index BreaKHis (or any folder of class sub-folders) and split it by patient.

BreaKHis file names encode everything:
``SOB_<B|M>_<code>-<yy>-<patient>-<magnification>-<seq>.png``. Slides of one patient
carry letter suffixes (``22549AB``, ``22549CD``); they are grouped as one patient, so
no patient can sit on both sides of a split. A generic folder ``ROOT/<class>/*.png``
works too (each image is then its own group, as no patient is known).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import BINARY_CLASSES, SUBTYPE_CLASSES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
BREAKHIS_NAME = re.compile(
    r"^SOB_(?P<group>[BM])_(?P<code>[A-Z]+)-(?P<year>\d+)-(?P<slide>\d+[A-Z]*)-(?P<mag>\d+)-(?P<seq>\d+)$"
)
SUBTYPE_CODES = {
    "A": "adenosis",
    "F": "fibroadenoma",
    "PT": "phyllodes_tumor",
    "TA": "tubular_adenoma",
    "DC": "ductal_carcinoma",
    "LC": "lobular_carcinoma",
    "MC": "mucinous_carcinoma",
    "PC": "papillary_carcinoma",
}
CLASS_SCHEMES = {"binary": BINARY_CLASSES, "subtype": SUBTYPE_CLASSES}
# BreaKHis publishes no pixel size. Measured against a 0.499 µm/px Aperio scan by nucleus
# size (benchmarks/breakhis_pixel_size.py, docs/breakhis-pixel-size.json): 0.48 µm/px at
# 100X overall, 0.42-0.66 by subtype. Other magnifications scale by the objective.
BREAKHIS_MPP_AT_100X = 0.5


class DataError(ValueError):
    """A data folder or file that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    patient: str
    group: str  # "benign" | "malignant" (generic folders: the class folder name)
    subtype: str
    magnification: int | None


def parse_breakhis_name(path: Path) -> ImageRecord | None:
    """An :class:`ImageRecord` from a BreaKHis file name, or None if it is not one."""
    match = BREAKHIS_NAME.match(path.stem)
    if match is None or match["code"] not in SUBTYPE_CODES:
        return None
    patient_number = re.match(r"\d+", match["slide"])
    assert patient_number is not None  # BREAKHIS_NAME's slide field starts with digits
    return ImageRecord(
        path=path,
        patient=f"{match['year']}-{patient_number.group()}",
        group="benign" if match["group"] == "B" else "malignant",
        subtype=SUBTYPE_CODES[match["code"]],
        magnification=int(match["mag"]),
    )


def index_dataset(root: str | os.PathLike, magnification: int | None = None) -> list[ImageRecord]:
    """All images under ``root``, BreaKHis-parsed when the names allow, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{root}: no images found (expected BreaKHis or ROOT/<class>/*.png)")
    parsed = [parse_breakhis_name(p) for p in paths]
    records = [r for r in parsed if r is not None]
    if records:
        unknown = [p for p, r in zip(paths, parsed, strict=True) if r is None]
        if unknown:
            raise DataError(
                f"{unknown[0]}: not a BreaKHis file name "
                f"(SOB_<B|M>_<code>-<yy>-<patient>-<mag>-<seq>); {len(unknown)} such file(s)"
            )
    else:
        records = [_generic_record(root, p) for p in paths]
    if magnification is not None:
        records = [r for r in records if r.magnification == magnification]
        if not records:
            raise DataError(f"{root}: no images at {magnification}X")
    return records


def breakhis_mpp(magnification: int) -> float:
    """µm/px of a BreaKHis image at ``magnification``X (40, 100, 200, 400)."""
    return BREAKHIS_MPP_AT_100X * 100 / magnification


def dataset_mpp(records: Sequence[ImageRecord]) -> float | None:
    """The pixel size of BreaKHis images all at one magnification; None for class folders
    or mixed magnifications (they have no single pixel size)."""
    magnifications = {r.magnification for r in records}
    if len(magnifications) != 1 or None in magnifications:
        return None
    [magnification] = magnifications
    assert magnification is not None
    return breakhis_mpp(magnification)


def _generic_record(root: Path, path: Path) -> ImageRecord:
    relative = path.relative_to(root)
    if len(relative.parts) < 2:
        raise DataError(f"{path}: images must sit in class sub-folders (ROOT/<class>/{path.name})")
    name = relative.parts[0]
    return ImageRecord(path, patient=str(relative), group=name, subtype=name, magnification=None)


def class_names_for(records: Sequence[ImageRecord], scheme: str) -> tuple[str, ...]:
    if scheme not in CLASS_SCHEMES:
        raise DataError(f"unknown class scheme '{scheme}' (use binary or subtype)")
    if all(r.group in BINARY_CLASSES for r in records):
        return CLASS_SCHEMES[scheme]
    return tuple(sorted({r.group for r in records}))  # generic class folders


def labels_for(records: Sequence[ImageRecord], scheme: str) -> np.ndarray:
    """Class index of each record under ``scheme`` (binary: group; subtype: subtype)."""
    names = class_names_for(records, scheme)
    use_subtype = scheme == "subtype" and names == SUBTYPE_CLASSES
    return np.array([names.index(r.subtype if use_subtype else r.group) for r in records])
