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
