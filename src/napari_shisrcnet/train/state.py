"""Resumable training state (optimiser, scheduler, RNG, counters) without pickle.

Tensors (Adam moments, the torch RNG state) go to safetensors; everything else
(param groups, scheduler state, counters, Python RNG state) is JSON in its header.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_KEY = "napari_shisrcnet_training_state"


def save_training_state(
    path: Path, optimizer, scheduler, counters: dict, weights: dict | None = None
) -> None:
    """``weights``: a state dict to keep with the state (the raw weights when the
    checkpoint beside it holds their moving average)."""
    tensors: dict[str, torch.Tensor] = {"rng/torch": torch.get_rng_state()}
    for name, value in (weights or {}).items():
        tensors[f"weights/{name}"] = value.detach().cpu().contiguous()
    scalars: dict[str, dict] = {}
    for param_index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{param_index}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_index), {})[key] = value
    metadata = {
        "param_groups": optimizer.state_dict()["param_groups"],
        "optimizer_scalars": scalars,
        "scheduler": scheduler.state_dict(),
        "python_rng": _jsonable(random.getstate()),
        "counters": counters,
    }
    temporary = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(temporary), metadata={STATE_KEY: json.dumps(metadata)})
    os.replace(temporary, path)


def load_training_state(path: Path, optimizer, scheduler) -> tuple[dict, dict]:
    """Restore optimiser, scheduler and RNG states; return the counters and saved weights."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads(handle.metadata()[STATE_KEY])
    tensors = load_file(str(path))
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer/"):
            _, param_index, key = name.split("/", 2)
            state.setdefault(int(param_index), {})[key] = tensor
    for param_index, values in metadata["optimizer_scalars"].items():
        state.setdefault(int(param_index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": metadata["param_groups"]})
    scheduler.load_state_dict(metadata["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    random.setstate(_tupled(metadata["python_rng"]))
    weights = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("weights/")}
    return metadata["counters"], weights


def _jsonable(value):
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _tupled(value):
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value
