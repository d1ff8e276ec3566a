"""Checkpoints that load without executing code: one .safetensors file.

Tensors are stored as safetensors; everything else (architecture, config, class
names, scale, input normalisation, provenance, package version and a checksum
of the tensor bytes) is JSON in the safetensors header metadata under the key
``napari_shisrcnet``. Reading trusts none of it: the header is read first and
only if small, the config is bounded, the tensors the header lists must be the
ones the config's network has (compared on the meta device, allocating nothing),
the scale is derived from the upsampler's weights and the class names counted
against the classifier head. Only then are tensors read, one at a time from a
memory map, and each must be finite. A bad file raises :class:`CheckpointError`
with a one-line message naming it, and nothing is half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from .._version import __version__
from ..classes import default_class_names
from .checkpoint_config import checked_config
from .checkpoint_file import (
    CheckpointError,
    SafetensorsHeader,
    TensorEntry,
    data_sha256,
    read_header,
    read_tensors,
    shown,
)
from .classifier import ClassifierConfig, SKNetFPNClassifier
from .shisrcnet import SHISRCNet, SHISRCNetConfig
from .srmfenet import SRMFENet, SRMFENetConfig

METADATA_KEY = "napari_shisrcnet"
FORMAT_VERSION = 1
INPUT_NORMALIZATION = {"color": "RGB", "value_range": [0.0, 1.0]}

ARCHITECTURES: dict[str, tuple[type[nn.Module], type]] = {
    "SHISRCNet": (SHISRCNet, SHISRCNetConfig),
    "SRMFENet": (SRMFENet, SRMFENetConfig),
    "SKNetFPNClassifier": (SKNetFPNClassifier, ClassifierConfig),
}
#: Where each architecture keeps its SR module and its classifier head in the state dict.
SR_PREFIX = {"SHISRCNet": "sr_module.", "SRMFENet": ""}
HEAD_WEIGHT = {"SHISRCNet": "classifier.fc.weight", "SKNetFPNClassifier": "fc.weight"}


@dataclass(frozen=True)
class CheckpointInfo:
    """Everything a checkpoint says about itself, read without loading tensors.

    ``scale`` and ``class_names`` have been checked against the weights (the upsampler's
    stages, the classifier head's outputs).
    """

    path: Path
    architecture: str
    config: dict
    scale: int | None
    class_names: tuple[str, ...]
    provenance: dict = field(default_factory=dict)
    package_version: str = "unknown"
    created: str = ""
    tensors_sha256: str = ""

    @property
    def class_logit_offsets(self) -> tuple[float, ...] | None:
        """Added to the class logits before the softmax: a decision threshold chosen on
        validation (``train --decision validation``); None: the paper's argmax."""
        decision = self.provenance.get("decision") or {}
        offsets = decision.get("class_logit_offsets")
        if offsets is None or not any(offsets):
            return None
        return tuple(float(v) for v in offsets)


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


def _metadata(path: Path, header: SafetensorsHeader) -> dict:
    raw = header.metadata.get(METADATA_KEY)
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
    except (json.JSONDecodeError, RecursionError, KeyError, TypeError, ValueError, OverflowError):
        raise CheckpointError(f"{path} has damaged napari-shisrcnet metadata") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, newer than this napari-shisrcnet "
            f"({__version__}) reads; upgrade the package"
        )
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise CheckpointError(f"{path} holds an unknown architecture {shown(architecture)}")
    return metadata


def _checked_config(path: Path, metadata: dict):
    architecture = metadata["architecture"]
    try:
        return checked_config(ARCHITECTURES[architecture][1], metadata["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path} has an invalid {architecture} config: {error}") from None


def _expected_tensors(path: Path, architecture: str, config) -> dict[str, torch.Tensor]:
    """The state dict of the configured network, on the meta device: shapes, no memory."""
    try:
        with torch.device("meta"):
            return ARCHITECTURES[architecture][0](config).state_dict()
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} has an invalid {architecture} config: {error}") from None


def _scale_words(scale: object) -> str:
    return "no SR module" if scale is None else f"x{scale}" if type(scale) is int else shown(scale)


def _weights_scale(architecture: str, tensors: dict[str, TensorEntry]) -> int | None:
    """The SR scale the weights implement: each upsampler stage doubles the size."""
    if architecture not in SR_PREFIX:
        return None
    stage = re.compile(re.escape(SR_PREFIX[architecture]) + r"upsampler\.\d+\.weight")
    return 2 ** sum(1 for name in tensors if stage.fullmatch(name))


def _check_scale(path: Path, metadata: dict, config, tensors: dict[str, TensorEntry]) -> int | None:
    derived = _weights_scale(metadata["architecture"], tensors)
    found = "missing" if derived == 1 else _scale_words(derived)
    claims = {"metadata": metadata.get("scale"), "config": _scale_and_classes(config)[0]}
    for source, claimed in claims.items():
        if claimed != derived or type(claimed) is not type(derived):  # 2.0 and True are not 2
            raise CheckpointError(
                f"{path} does not match its weights: its {source} says {_scale_words(claimed)}, "
                f"its upsampler weights are {found}"
            )
    return derived


def _tensor_problems(expected: dict[str, torch.Tensor], found: dict[str, TensorEntry]) -> list[str]:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    common = sorted(set(expected) & set(found))
    wrong_shape = [n for n in common if tuple(expected[n].shape) != found[n].shape]
    wrong_type = [
        n
        for n in common
        if found[n].dtype != expected[n].dtype
        and not (found[n].dtype.is_floating_point and expected[n].dtype.is_floating_point)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {shown(unexpected[0])})")
    if wrong_shape:
        name = wrong_shape[0]
        problems.append(
            f"{len(wrong_shape)} tensor(s) with the wrong shape (e.g. {name}: "
            f"{found[name].shape} in file, {tuple(expected[name].shape)} expected)"
        )
    if wrong_type:
        name = wrong_type[0]
        problems.append(
            f"{len(wrong_type)} tensor(s) of the wrong type (e.g. {name}: "
            f"{found[name].dtype} in file, {expected[name].dtype} expected)"
        )
    return problems


def _check_tensors_match(path: Path, architecture: str, config, header: SafetensorsHeader) -> None:
    problems = _tensor_problems(_expected_tensors(path, architecture, config), header.tensors)
    if problems:
        raise CheckpointError(
            f"{path} does not match the {architecture} its metadata describes: "
            + "; ".join(problems)
        )


def _class_names(path: Path, metadata: dict, header: SafetensorsHeader) -> tuple[str, ...]:
    names = metadata.get("class_names") or []
    if not (
        isinstance(names, list)
        and all(isinstance(name, str) and name.strip() for name in names)
        and len(set(names)) == len(names)
    ):
        raise CheckpointError(f"{path} has damaged class names: {shown(names)}")
    head = HEAD_WEIGHT.get(metadata["architecture"])
    outputs = header.tensors[head].shape[0] if head else 0
    if len(names) != outputs:
        head_words = (
            f"its classifier head has {outputs} outputs" if head else "it has no classifier"
        )
        raise CheckpointError(
            f"{path} names {len(names)} classes ({shown(names)}) but {head_words}"
        )
    return tuple(names)


def _info(path: Path, metadata: dict, scale: int | None, class_names: tuple[str, ...]):
    optional = {"provenance": dict, "package_version": str, "created": str, "tensors_sha256": str}
    for key, kind in optional.items():
        if key in metadata and not isinstance(metadata[key], kind):
            raise CheckpointError(f"{path} has damaged napari-shisrcnet metadata ({key})")
    return CheckpointInfo(
        path=path,
        architecture=metadata["architecture"],
        config=metadata["config"],
        scale=scale,
        class_names=class_names,
        provenance=metadata.get("provenance") or {},
        package_version=metadata.get("package_version", "unknown"),
        created=metadata.get("created", ""),
        tensors_sha256=metadata.get("tensors_sha256", ""),
    )


def _inspect(path: Path) -> tuple[SafetensorsHeader, CheckpointInfo, object]:
    """Everything checkable from the header alone; returns (header, info, config)."""
    header = read_header(path)
    metadata = _metadata(path, header)
    config = _checked_config(path, metadata)
    scale = _check_scale(path, metadata, config, header.tensors)
    _check_tensors_match(path, metadata["architecture"], config, header)
    class_names = _class_names(path, metadata, header)
    return header, _info(path, metadata, scale, class_names), config


def read_checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """Read and validate a checkpoint's header; no tensor data is read and nothing is built.

    Checks the metadata, the config's bounds, every tensor's name, shape and type against
    the network the config describes, the scale against the upsampler weights and the
    class names against the classifier head. Tensor values (checksum, NaN/Inf) are checked
    only by :func:`load_checkpoint`.
    """
    return _inspect(Path(path))[1]


def _check_expectations(info: CheckpointInfo, architecture: str | None, scale: int | None) -> None:
    if architecture is not None and info.architecture != architecture:
        raise CheckpointError(
            f"{info.path} holds a {info.architecture}; a {architecture} was requested"
        )
    if scale is not None and info.scale != scale:
        found = "no SR module" if info.scale is None else f"a x{info.scale} model"
        raise CheckpointError(f"{info.path} is {found}; x{scale} was requested")


def _load_weights(header: SafetensorsHeader, model: nn.Module) -> None:
    """Copy the file's tensors into ``model`` one at a time, refusing NaN and Inf."""
    state = model.state_dict()  # shares storage with the parameters and buffers
    with torch.no_grad(), closing(read_tensors(header, state)) as tensors:
        for name, tensor in tensors:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(
                    f"{header.path} holds non-finite weights (NaN or Inf) in {name}"
                )
            state[name].copy_(tensor)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    expected_architecture: str | None = None,
    expected_scale: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, CheckpointInfo]:
    """Build the model a checkpoint describes, load its weights, return (model in eval mode, info).

    Raises :class:`CheckpointError` for a missing, corrupt, foreign or mismatched file, or
    one with non-finite weights; see :func:`read_checkpoint_info` for what is checked first.
    """
    path = Path(path)
    header, info, config = _inspect(path)
    _check_expectations(info, expected_architecture, expected_scale)
    if info.tensors_sha256 != data_sha256(header):
        raise CheckpointError(f"{path} is corrupt: its tensor data does not match its checksum")
    model = ARCHITECTURES[info.architecture][0](config)
    _load_weights(header, model)
    return model.to(device).eval(), info
