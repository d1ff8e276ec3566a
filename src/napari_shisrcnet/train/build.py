"""The network to train: built from a TrainConfig, initialised from checkpoints, averaged."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..model import SHISRCNet, SKNetFPNClassifier, SRMFENet, load_checkpoint
from .config import TrainConfig
from .grow import can_grow, grow_into


def build_model(config: TrainConfig, num_classes: int) -> torch.nn.Module:
    model_config = config.model_config(num_classes)
    if config.stage == "sr":
        return SRMFENet(model_config.sr)
    if config.stage == "classifier":
        return SKNetFPNClassifier(model_config.classifier)
    return SHISRCNet(model_config)


def initialise_all(model: torch.nn.Module, checkpoints: Sequence[str]) -> list[str]:
    """Initialise ``model`` from each checkpoint in turn; what each did, for the log."""
    return [f"--init {path}: {initialise_from(model, path)}" for path in checkpoints]


def initialise_from(model: torch.nn.Module, checkpoint: str) -> str:
    """Load weights for fine-tuning: same architecture, or one module of a joint model
    (SR-only weights into its SR module, classifier-only weights into its classifier, and
    back: a joint model's SR module or classifier into an SR-only or classifier-only model).

    ``checkpoint`` is a file or ``"default"`` (the bundled model). Returns what was done,
    in words, for the training log.
    """
    from ..model.bundled import checkpoint_path

    source, info = load_checkpoint(checkpoint_path(checkpoint))
    target: torch.nn.Module
    if isinstance(model, SHISRCNet) and isinstance(source, SRMFENet):
        target = model.sr_module
    elif isinstance(model, SHISRCNet) and isinstance(source, SKNetFPNClassifier):
        target = model.classifier
    elif isinstance(source, SHISRCNet) and isinstance(model, SRMFENet):
        target, source = model, source.sr_module
    elif isinstance(source, SHISRCNet) and isinstance(model, SKNetFPNClassifier):
        target, source = model, source.classifier
    elif type(source) is type(model):
        target = model
    else:
        raise ValueError(
            f"{checkpoint}: a {info.architecture} cannot initialise a {type(model).__name__}"
        )
    # Decided before anything is copied: a refused init leaves the model as it was built
    # (load_state_dict copies the tensors that fit before it reports those that do not).
    what = {SRMFENet: "SR module", SKNetFPNClassifier: "classifier"}.get(type(target), "model")
    if _same_shapes(source, target):
        target.load_state_dict(source.state_dict())
        return f"{what} copied"
    if _differs_only_in_scale(source, target):
        _transfer_across_scales(source, target)
        return (
            f"{what} copied but for the upsampling stage(s) that x{_sr_config(target).scale} adds"
        )
    if isinstance(source, SRMFENet) and isinstance(target, SRMFENet):
        if not can_grow(source, target):  # a smaller SR module may start a larger one
            raise _config_differs(checkpoint, info)
        grow_into(source, target)
        small, large = source.config, target.config
        return (
            f"SR module grown from {small.channels} channels x {small.n_blocks} blocks to "
            f"{large.channels} x {large.n_blocks} (train/grow.py)"
        )
    raise _config_differs(checkpoint, info)


def _config_differs(checkpoint: str, info) -> ValueError:
    return ValueError(
        f"{checkpoint}: its {info.architecture} config differs from the one being trained "
        "(channels, blocks, scale or classes)"
    )


def _same_shapes(source: torch.nn.Module, target: torch.nn.Module) -> bool:
    wanted, given = target.state_dict(), source.state_dict()
    return wanted.keys() == given.keys() and all(
        wanted[name].shape == tensor.shape for name, tensor in given.items()
    )


def _sr_config(model: torch.nn.Module):
    sr = model.sr_module if isinstance(model, SHISRCNet) else model
    return sr.config if isinstance(sr, SRMFENet) else None


def _differs_only_in_scale(source: torch.nn.Module, target: torch.nn.Module) -> bool:
    from dataclasses import replace

    source_sr, target_sr = _sr_config(source), _sr_config(target)
    if source_sr is None or target_sr is None or type(source) is not type(target):
        return False
    if isinstance(source, SHISRCNet) and isinstance(target, SHISRCNet):
        return (
            replace(source.config.sr, scale=target_sr.scale) == target_sr
            and source.config.classifier == target.config.classifier
        )
    return replace(source_sr, scale=target_sr.scale) == target_sr


def _transfer_across_scales(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Start an x4 (or x8) network from an x2 one, as EDSR does: every tensor whose name
    and shape match (all but the extra pixel-shuffle stages) is copied."""
    wanted = target.state_dict()
    matching = {
        name: tensor
        for name, tensor in source.state_dict().items()
        if name in wanted and wanted[name].shape == tensor.shape
    }
    target.load_state_dict(matching, strict=False)


def ema_with_warmup(decay: float):
    """Exponential moving average whose decay ramps up as (1 + n) / (10 + n) to ``decay``.

    Without the ramp the average starts as the initial weights and BatchNorm statistics
    (running variance 1) and needs ~1 / (1 - decay) steps to forget them: a short run
    would validate a network normalised by statistics it never had. (timm's ModelEma
    uses the same warm-up.)
    """

    def average(averaged: list, current: list, num_averaged) -> None:
        steps = float(num_averaged)
        rate = 1 - min(decay, (1 + steps) / (10 + steps))
        if averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, rate)
        else:  # integer buffers (BatchNorm's batch counter): follow the model
            torch._foreach_copy_(averaged, current)

    return average


def moving_average(model: torch.nn.Module, decay: float | None):
    """An exponential moving average of ``model`` (None without a decay). BatchNorm
    statistics are averaged too (``use_buffers``), so the average is usable as it is."""
    if decay is None:
        return None
    from torch.optim.swa_utils import AveragedModel

    return AveragedModel(model, multi_avg_fn=ema_with_warmup(decay), use_buffers=True)


#: TrainConfig architecture setting -> where a checkpoint's config holds it.
_FROM_CHECKPOINT = {
    "sr_channels": ("sr", "channels"),
    "sr_blocks": ("sr", "n_blocks"),
    "sr_fusion": ("sr", "fusion"),
    "classifier_width": ("classifier", "width"),
}


def with_init_architecture(config: TrainConfig) -> TrainConfig:
    """``config`` with each architecture setting it leaves unset taken from the first
    checkpoint it fine-tunes that has one (so ``--init default`` fine-tunes the bundled
    model as it is built), else from DEFAULT_ARCHITECTURE. Explicit settings stay: a
    larger SR module is grown from a smaller one (train/grow.py)."""
    from dataclasses import replace

    unset = [name for name in _FROM_CHECKPOINT if getattr(config, name) is None]
    found = init_architecture(config.init_checkpoints)
    return replace(config, **{name: found.get(name, config.architecture(name)) for name in unset})


def init_architecture(checkpoints: Sequence[str]) -> dict:
    """The architecture settings these checkpoints fix, each from the first that has it
    (``sr_channels``, ``sr_blocks``, ``sr_fusion``, ``classifier_width``)."""
    found: dict = {}
    for checkpoint in checkpoints:
        sections = _config_sections(checkpoint)
        for name, (section, key) in _FROM_CHECKPOINT.items():
            if key in sections.get(section, {}):
                found.setdefault(name, sections[section][key])
    return found


def _config_sections(checkpoint: str) -> dict:
    """A checkpoint's model config as {"sr": ..., "classifier": ...} (the parts it has)."""
    from ..model.bundled import checkpoint_path
    from ..model.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(checkpoint_path(checkpoint))
    sections = {
        "SHISRCNet": info.config,
        "SRMFENet": {"sr": info.config},
        "SKNetFPNClassifier": {"classifier": info.config},
    }.get(info.architecture, {})
    if "sr" in sections:  # trained before fusion was a setting: the paper's MSF
        sections["sr"] = {"fusion": "paper", **sections["sr"]}
    return sections
