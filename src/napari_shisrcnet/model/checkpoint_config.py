"""Bounds on the config a checkpoint's metadata describes, checked before a network is built.

The bounds lie far above anything the paper or this package trains, and low enough that
the largest network they allow is described on PyTorch's meta device (shapes only, no
memory) in well under a second. The file's tensors must then match that description, so
what a checkpoint makes us allocate is bounded by the size of the file itself.
"""

from __future__ import annotations

import math
from dataclasses import fields

from ..geometry import SUPPORTED_SCALES
from .checkpoint_file import shown
from .classifier import ClassifierConfig
from .shisrcnet import SHISRCNetConfig
from .srmfenet import FUSIONS, SRMFENetConfig

#: Whole-number settings -> (least, most).
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "channels": (1, 1024),
    "n_blocks": (1, 16),
    "num_classes": (2, 1000),
    "sk_branches": (1, 8),
    "sk_groups": (1, 256),
    "sk_reduction": (1, 1024),
    "sk_min_attention_dim": (1, 4096),
    "fpn_channels": (1, 4096),
    "fpn_levels": (2, 4),
    "csf_reduction": (1, 1024),
    "csf_min_attention_dim": (1, 4096),
    "projection_dim": (1, 8192),
}
#: Lists of whole numbers -> ((least, most) entries, (least, most) per entry).
INT_LIST_BOUNDS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "dilation_rates": ((1, 8), (1, 64)),
    "stage_blocks": ((4, 4), (1, 24)),
}
#: Real-valued settings -> (least, most).
FLOAT_BOUNDS: dict[str, tuple[float, float]] = {"width": (1 / 64, 4.0), "dropout": (0.0, 0.99)}
BOOL_SETTINGS = frozenset({"bicubic_residual"})
#: Settings that name one of a few choices -> the choices.
CHOICE_SETTINGS: dict[str, tuple[str, ...]] = {"fusion": FUSIONS}


def _check_setting(label: str, key: str, value: object) -> None:
    """Raise ValueError saying what ``label`` may be when ``value`` is out of bounds."""
    if key == "scale":
        if not (type(value) is int and value in SUPPORTED_SCALES):
            raise ValueError(f"{label} is {shown(value)}; supported scales are {SUPPORTED_SCALES}")
    elif key in INT_BOUNDS:
        least, most = INT_BOUNDS[key]
        if not (type(value) is int and least <= value <= most):
            raise ValueError(f"{label} is {shown(value)}; expected a whole number {least}-{most}")
    elif key in INT_LIST_BOUNDS:
        (fewest, most_entries), (least, most) = INT_LIST_BOUNDS[key]
        entries = value if isinstance(value, list | tuple) else None
        if not (
            entries is not None
            and fewest <= len(entries) <= most_entries
            and all(type(entry) is int and least <= entry <= most for entry in entries)
        ):
            count = f"{fewest}" if fewest == most_entries else f"{fewest}-{most_entries}"
            raise ValueError(
                f"{label} is {shown(value)}; expected {count} whole numbers {least}-{most}"
            )
    elif key in FLOAT_BOUNDS:
        least_real, most_real = FLOAT_BOUNDS[key]
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not least_real <= number <= most_real:
            raise ValueError(f"{label} is {shown(value)}; expected {least_real:g}-{most_real:g}")
    elif key in CHOICE_SETTINGS:
        if value not in CHOICE_SETTINGS[key]:
            raise ValueError(f"{label} is {shown(value)}; expected one of {CHOICE_SETTINGS[key]}")
    elif key in BOOL_SETTINGS:
        if not isinstance(value, bool):
            raise ValueError(f"{label} is {shown(value)}; expected true or false")
    else:
        raise ValueError(f"unknown setting {shown(label)}")


def _section(config_class: type, values: object, prefix: str):
    if not isinstance(values, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'config'} is not a mapping")
    known = {f.name for f in fields(config_class)}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"unknown setting {shown(prefix + str(key))}")
        _check_setting(prefix + key, key, value)
    return config_class(**values)


def checked_config(
    config_class: type, values: object
) -> SHISRCNetConfig | SRMFENetConfig | ClassifierConfig:
    """The config of class ``config_class`` that ``values`` (from JSON) describe.

    Missing settings take their defaults; an unknown setting or a value out of bounds
    raises ValueError naming it.
    """
    if config_class is not SHISRCNetConfig:
        return _section(config_class, values, "")
    if not isinstance(values, dict):
        raise ValueError("config is not a mapping")
    unknown = set(values) - {"sr", "classifier", "projection_dim"}
    if unknown:
        raise ValueError(f"unknown setting {shown(sorted(map(str, unknown))[0])}")
    projection_dim = values.get("projection_dim")
    if projection_dim is not None:
        _check_setting("projection_dim", "projection_dim", projection_dim)
    return SHISRCNetConfig(
        sr=_section(SRMFENetConfig, values.get("sr", {}), "sr."),
        classifier=_section(ClassifierConfig, values.get("classifier", {}), "classifier."),
        projection_dim=projection_dim,
    )
