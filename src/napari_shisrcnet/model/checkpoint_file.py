"""The safetensors container of a checkpoint, read with bounded memory.

The header (an 8-byte little-endian length, then JSON) is read first and only if it is
small; every tensor's type, shape and byte range is checked against the file's size
without reading tensor data. Tensor data is then hashed in a stream and read one tensor
at a time through safetensors' memory map, so a large or junk file never sits in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

#: A checkpoint's header is tens of kB (the bundled model's: 39 kB); refuse more than this.
MAX_HEADER_BYTES = 8 * 2**20

#: safetensors dtype code -> (torch dtype, bytes per element); other codes are refused.
DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


def shown(value: object, limit: int = 60) -> str:
    """``value`` quoted on one short line, for messages about untrusted file contents."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it; ``start``/``end`` index the data section."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A parsed, validated header; ``identity`` tells whether the file changed since."""

    path: Path
    metadata: dict[str, str]
    tensors: dict[str, TensorEntry]
    data_start: int
    identity: tuple[int, int, int, int]


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _header_length(path: Path, prefix: bytes, file_size: int) -> int:
    """The header length from the first 9 bytes (the length, then the JSON's ``{``)."""
    # A safetensors length can begin with 0x80 too (a 640-byte header: 80 02 00 ...); only
    # the byte after the length tells a header ("{") from a pickle's opcodes.
    if (prefix[:2] == b"PK" or prefix[:1] == b"\x80") and prefix[8:9] != b"{":
        raise CheckpointError(
            f"{path} is a PyTorch pickle, which can run code when loaded; "
            "napari-shisrcnet reads only .safetensors checkpoints"
        )
    if len(prefix) < 8:
        raise CheckpointError(f"{path} is not a safetensors checkpoint (only {file_size} bytes)")
    (header_len,) = struct.unpack("<Q", prefix[:8])
    if header_len > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path} is not a safetensors checkpoint (its first bytes announce a "
            f"{header_len:,}-byte header; at most {MAX_HEADER_BYTES:,} are read)"
        )
    if header_len > file_size - 8:
        raise CheckpointError(f"{path} is not a safetensors checkpoint, or it is truncated")
    return header_len


def _parse_json(path: Path, raw: bytes) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        header = None
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise CheckpointError(f"{path} is not a safetensors checkpoint (unreadable header)")
    assert isinstance(header, dict)
    return header


def _whole_numbers(value: object, count: int | None = None) -> list[int] | None:
    """``value`` if it is a list of non-negative ints (of length ``count``), else None."""
    if not isinstance(value, list) or (count is not None and len(value) != count):
        return None
    return value if all(type(n) is int and n >= 0 for n in value) else None


def _entry(path: Path, name: str, value: object) -> TensorEntry:
    code = value.get("dtype") if isinstance(value, dict) else None
    if not isinstance(value, dict) or not isinstance(code, str) or code not in DTYPES:
        raise CheckpointError(f"{path} has tensor {shown(name)} of unknown type {shown(code)}")
    shape = _whole_numbers(value.get("shape"))
    offsets = _whole_numbers(value.get("data_offsets"), 2)
    if shape is None or offsets is None or offsets[0] > offsets[1]:
        raise CheckpointError(f"{path} is corrupt: the header entry of {shown(name)} is damaged")
    dtype, item_bytes = DTYPES[code]
    if offsets[1] - offsets[0] != math.prod(shape) * item_bytes:
        raise CheckpointError(
            f"{path} is corrupt: the byte range of {shown(name)} does not fit its shape"
        )
    return TensorEntry(dtype, tuple(shape), offsets[0], offsets[1])


def _check_layout(path: Path, tensors: dict[str, TensorEntry], data_bytes: int) -> None:
    """Tensors tile the data section exactly, as safetensors requires (no gaps or overlaps)."""
    position = 0
    for entry in sorted(tensors.values(), key=lambda e: (e.start, e.end)):
        if entry.start != position:
            raise CheckpointError(f"{path} is corrupt: its tensors overlap or leave gaps")
        position = entry.end
    if position > data_bytes:
        raise CheckpointError(
            f"{path} is corrupt or truncated: its tensors need {position:,} bytes of data, "
            f"the file holds {data_bytes:,}"
        )
    if position < data_bytes:
        raise CheckpointError(
            f"{path} is corrupt: {data_bytes - position:,} bytes follow its last tensor"
        )


def read_header(path: Path) -> SafetensorsHeader:
    """Parse and check the header of ``path``, reading at most ``MAX_HEADER_BYTES + 8`` bytes."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            prefix = handle.read(9)
            header_len = _header_length(path, prefix, status.st_size)
            first = prefix[8 : 8 + header_len]
            raw = first + handle.read(header_len - len(first))
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    header = _parse_json(path, raw)
    metadata = header.pop("__metadata__", {})
    tensors = {name: _entry(path, name, value) for name, value in header.items()}
    _check_layout(path, tensors, status.st_size - 8 - header_len)
    return SafetensorsHeader(path, metadata, tensors, 8 + header_len, _identity(status))


def _check_unchanged(header: SafetensorsHeader, status: os.stat_result) -> None:
    if _identity(status) != header.identity:
        raise CheckpointError(f"{header.path} changed while it was being read; try again")


def data_sha256(header: SafetensorsHeader) -> str:
    """SHA-256 of the data section, read in a stream (memory stays flat)."""
    try:
        with open(header.path, "rb") as handle:
            _check_unchanged(header, os.fstat(handle.fileno()))
            handle.seek(header.data_start)
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise CheckpointError(f"cannot read {header.path}: {error.strerror or error}") from None


def read_tensors(
    header: SafetensorsHeader, names: Iterable[str]
) -> Generator[tuple[str, torch.Tensor]]:
    """Yield ``(name, tensor)`` one at a time from safetensors' memory map of the file."""
    try:
        with safe_open(str(header.path), framework="pt", device="cpu") as handle:
            _check_unchanged(header, os.stat(header.path))
            for name in names:
                yield name, handle.get_tensor(name)
    except (SafetensorError, OSError) as error:
        message = " ".join(str(error).split())
        raise CheckpointError(f"{header.path} is corrupt: {shown(message, 200)}") from None
