"""Typed access to the members and attributes of zarr groups whose layout we know.

zarr types ``group[path]`` as "an array or a group" and attribute values as any JSON
value; these helpers name what the layout (our results, NGFF) guarantees.
"""

from __future__ import annotations

from typing import Any

import zarr

#: The attribute under which a napari-shisrcnet result records its run (results/resume.py).
RESULT_RECORD_KEY = "napari_shisrcnet"


def array_at(group: zarr.Group, path: str) -> zarr.Array:
    """The array at ``path`` below ``group``."""
    node = group[path]
    assert isinstance(node, zarr.Array), f"{path} is a zarr group, not an array"
    return node


def group_at(group: zarr.Group, path: str) -> zarr.Group:
    """The group at ``path`` below ``group``."""
    node = group[path]
    assert isinstance(node, zarr.Group), f"{path} is a zarr array, not a group"
    return node


def attributes(node: zarr.Group | zarr.Array) -> dict[str, Any]:
    """A copy of the node's attributes: JSON, read by the layout it follows."""
    return dict(node.attrs)


def ngff_attributes(node: zarr.Group | zarr.Array) -> dict[str, Any]:
    """The node's NGFF metadata (NGFF 0.5 nests it under ``ome``; 0.4 does not)."""
    attrs = attributes(node)
    return attrs.get("ome", attrs)
