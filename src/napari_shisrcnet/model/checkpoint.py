"""Checkpoints that load without executing code: one .safetensors file.

Tensors are stored as safetensors; everything else (architecture, config, class
names, scale, input normalisation, provenance, package version and a checksum
of the tensor bytes) is JSON in the safetensors header metadata under the key
``napari_shisrcnet``. Loading validates everything before it builds a model, so a
bad file raises :class:`CheckpointError` with a one-line message and nothing is
half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from .._version import __version__
from ..classes import default_class_names
from .classifier import ClassifierConfig, SKNetFPNClassifier
from .shisrcnet import SHISRCNet, SHISRCNetConfig
from .srmfenet import SRMFENet, SRMFENetConfig

METADATA_KEY = "napari_shisrcnet"
FORMAT_VERSION = 1
INPUT_NORMALIZATION = {"color": "RGB", "value_range": [0.0, 1.0]}
_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit

ARCHITECTURES: dict[str, tuple[type[nn.Module], type]] = {
    "SHISRCNet": (SHISRCNet, SHISRCNetConfig),
    "SRMFENet": (SRMFENet, SRMFENetConfig),
    "SKNetFPNClassifier": (SKNetFPNClassifier, ClassifierConfig),
}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything a checkpoint says about itself, read without loading tensors."""

    path: Path
    architecture: str
    config: dict
    scale: int | None
    class_names: tuple[str, ...]
    provenance: dict = field(default_factory=dict)
    package_version: str = "unknown"
    created: str = ""
    tensors_sha256: str = ""


def _architecture_name(model: nn.Module) -> str:
    for name, (model_class, _) in ARCHITECTURES.items():
        if type(model) is model_class:
            return name
    raise TypeError(
        f"cannot checkpoint a {type(model).__name__}; expected one of {list(ARCHITECTURES)}"
    )


def _model_config(model: nn.Module) -> SHISRCNetConfig | SRMFENetConfig | ClassifierConfig:
    """The config of a model of one of the :data:`ARCHITECTURES`."""
    config = model.config
    assert isinstance(config, SHISRCNetConfig | SRMFENetConfig | ClassifierConfig)
    return config


def _config_from_dict(architecture: str, values: dict):
    config_class = ARCHITECTURES[architecture][1]
    if config_class is SHISRCNetConfig:
        return SHISRCNetConfig.from_dict(values)
    return config_class(**values)


def _scale_and_classes(config) -> tuple[int | None, int | None]:
    if isinstance(config, SHISRCNetConfig):
        return config.sr.scale, config.classifier.num_classes
    if isinstance(config, SRMFENetConfig):
        return config.scale, None
    return None, config.num_classes


def _data_section(blob: bytes) -> bytes:
    (header_len,) = struct.unpack("<Q", blob[:8])
    return blob[8 + header_len :]


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    class_names: tuple[str, ...] | list[str] | None = None,
    provenance: dict | None = None,
    weights_dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` to ``path`` (.safetensors) atomically and return the path.

    ``weights_dtype=torch.float16`` halves the file (used for bundled weights);
    by default tensors keep their dtype and the round trip is bit-exact.
    """
    architecture = _architecture_name(model)
    config = _model_config(model)
    scale, num_classes = _scale_and_classes(config)
    if num_classes is not None:
        class_names = tuple(class_names or default_class_names(num_classes))
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names given for {num_classes} classes")
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if weights_dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(weights_dtype)
        tensors[name] = tensor.contiguous()
    metadata = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": config.to_dict(),
        "scale": scale,
        "class_names": list(class_names or ()),
        "input_normalization": INPUT_NORMALIZATION,
        "provenance": provenance or {},
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # The data section does not depend on the header metadata, so hash it first.
    digest = hashlib.sha256(_data_section(save_safetensors_bytes(tensors))).hexdigest()
    metadata["tensors_sha256"] = digest
    blob = save_safetensors_bytes(tensors, metadata={METADATA_KEY: json.dumps(metadata)})
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _read_blob(path: Path) -> bytes:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path.read_bytes()


def _header(path: Path, blob: bytes) -> dict:
    if blob[:2] == b"PK" or blob[:1] == b"\x80":
        raise CheckpointError(
            f"{path} is a PyTorch pickle, which can run code when loaded; "
            "napari-shisrcnet reads only .safetensors checkpoints"
        )
    if len(blob) < 8:
        raise CheckpointError(f"{path} is not a safetensors checkpoint (only {len(blob)} bytes)")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > min(len(blob) - 8, _MAX_HEADER_BYTES):
        raise CheckpointError(f"{path} is not a safetensors checkpoint, or it is truncated")
    try:
        header = json.loads(blob[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path} is not a safetensors checkpoint (unreadable header)"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors checkpoint (unreadable header)")
    return header


def _metadata(path: Path, header: dict) -> dict:
    raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not a napari-shisrcnet checkpoint "
            f"(no '{METADATA_KEY}' metadata)"
        )
    try:
        metadata = json.loads(raw)
        version = int(metadata["format_version"])
        architecture = metadata["architecture"]
        if "config" not in metadata:
            raise KeyError("config")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path} has damaged napari-shisrcnet metadata") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, newer than this napari-shisrcnet "
            f"({__version__}) reads; upgrade the package"
        )
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"{path} holds an unknown architecture '{architecture}'")
    return metadata


def _info(path: Path, metadata: dict) -> CheckpointInfo:
    return CheckpointInfo(
        path=path,
        architecture=metadata["architecture"],
        config=metadata["config"],
        scale=metadata.get("scale"),
        class_names=tuple(metadata.get("class_names") or ()),
        provenance=metadata.get("provenance") or {},
        package_version=metadata.get("package_version", "unknown"),
        created=metadata.get("created", ""),
        tensors_sha256=metadata.get("tensors_sha256", ""),
    )


def read_checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """Read and validate a checkpoint's metadata (no tensors are built)."""
    path = Path(path)
    blob = _read_blob(path)
    return _info(path, _metadata(path, _header(path, blob)))


def _check_expectations(info: CheckpointInfo, architecture: str | None, scale: int | None) -> None:
    if architecture is not None and info.architecture != architecture:
        raise CheckpointError(
            f"{info.path} holds a {info.architecture}; a {architecture} was requested"
        )
    if scale is not None and info.scale != scale:
        found = "no SR module" if info.scale is None else f"a x{info.scale} model"
        raise CheckpointError(f"{info.path} is {found}; x{scale} was requested")


def _check_tensors_match(path: Path, architecture: str, model: nn.Module, tensors: dict) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(
        name
        for name in set(expected) & set(tensors)
        if tuple(expected[name].shape) != tuple(tensors[name].shape)
    )
    if not (missing or unexpected or wrong_shape):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {unexpected[0]})")
    if wrong_shape:
        name = wrong_shape[0]
        problems.append(
            f"{len(wrong_shape)} tensor(s) with the wrong shape (e.g. {name}: "
            f"{tuple(tensors[name].shape)} in file, {tuple(expected[name].shape)} expected)"
        )
    raise CheckpointError(
        f"{path} does not match the {architecture} its metadata describes: " + "; ".join(problems)
    )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    expected_architecture: str | None = None,
    expected_scale: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, CheckpointInfo]:
    """Build the model a checkpoint describes, load its weights, return (model in eval mode, info).

    Raises :class:`CheckpointError` for a missing, corrupt, foreign or mismatched file.
    """
    path = Path(path)
    blob = _read_blob(path)
    metadata = _metadata(path, _header(path, blob))
    info = _info(path, metadata)
    _check_expectations(info, expected_architecture, expected_scale)
    if metadata.get("tensors_sha256") != hashlib.sha256(_data_section(blob)).hexdigest():
        raise CheckpointError(f"{path} is corrupt: its tensor data does not match its checksum")
    try:
        tensors = load_safetensors_bytes(blob)
    except SafetensorError as error:
        raise CheckpointError(f"{path} is corrupt: {error}") from None
    try:
        model = ARCHITECTURES[info.architecture][0](
            _config_from_dict(info.architecture, info.config)
        )
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"{path} has an invalid {info.architecture} config: {error}"
        ) from None
    _check_tensors_match(path, info.architecture, model, tensors)
    reference = model.state_dict()
    model.load_state_dict({k: v.to(reference[k].dtype) for k, v in tensors.items()}, strict=True)
    return model.to(device).eval(), info
