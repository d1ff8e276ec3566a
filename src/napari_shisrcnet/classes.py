"""Class schemes: BreaKHis benign/malignant (what the paper reports) and its 8 subtypes."""

from __future__ import annotations

BINARY_CLASSES = ("benign", "malignant")
SUBTYPE_CLASSES = (
    "adenosis",
    "fibroadenoma",
    "phyllodes_tumor",
    "tubular_adenoma",
    "ductal_carcinoma",
    "lobular_carcinoma",
    "mucinous_carcinoma",
    "papillary_carcinoma",
)


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """BreaKHis names for 2 or 8 classes, ``class_0 ...`` otherwise."""
    if num_classes == len(BINARY_CLASSES):
        return BINARY_CLASSES
    if num_classes == len(SUBTYPE_CLASSES):
        return SUBTYPE_CLASSES
    return tuple(f"class_{i}" for i in range(num_classes))


def positive_class_index(names) -> int:
    """The class a heatmap shows the probability of: "malignant", else the last class."""
    names = list(names)
    return names.index("malignant") if "malignant" in names else len(names) - 1


# Okabe-Ito-based, colour-blind safe: benign in greens/blues, malignant in reds/oranges.
_BINARY_COLORS = {"benign": (0, 158, 115), "malignant": (213, 94, 0)}
_SUBTYPE_COLORS = {
    "adenosis": (0, 158, 115),
    "fibroadenoma": (86, 180, 233),
    "phyllodes_tumor": (0, 114, 178),
    "tubular_adenoma": (120, 200, 160),
    "ductal_carcinoma": (213, 94, 0),
    "lobular_carcinoma": (230, 159, 0),
    "mucinous_carcinoma": (204, 121, 167),
    "papillary_carcinoma": (170, 40, 40),
}
_FALLBACK_COLORS = [
    (0, 158, 115),
    (213, 94, 0),
    (86, 180, 233),
    (230, 159, 0),
    (0, 114, 178),
    (204, 121, 167),
    (240, 228, 66),
    (120, 120, 120),
]


def class_colors(class_names: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """A fixed RGB colour per class name (the same colour for a class in every run)."""
    known = {**_BINARY_COLORS, **_SUBTYPE_COLORS}
    return [
        known.get(name, _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)])
        for i, name in enumerate(class_names)
    ]
