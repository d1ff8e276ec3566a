"""The SHISRCNet network, its baseline, losses and checkpoints (no Qt, no napari)."""

from .checkpoint import (
    CheckpointError,
    CheckpointInfo,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from .classifier import (
    MIN_INPUT_SIDE_PX,
    ClassifierConfig,
    ClassifierOutput,
    CSFBlock,
    SKNetFPNClassifier,
)
from .losses import LossBreakdown, LossConfig, SHISRCNetLoss, focal_loss, nt_xent_loss
from .shisrcnet import SHISRCNet, SHISRCNetConfig, SHISRCNetOutput
from .sknet import SKConv, SKNet
from .srmfenet import (
    SUPPORTED_SCALES,
    BicubicSR,
    MFEBlock,
    MultiScaleSelectiveFusion,
    SRMFENet,
    SRMFENetConfig,
    bicubic_upsample,
)

__all__ = [
    "MIN_INPUT_SIDE_PX",
    "SUPPORTED_SCALES",
    "BicubicSR",
    "CSFBlock",
    "CheckpointError",
    "CheckpointInfo",
    "ClassifierConfig",
    "ClassifierOutput",
    "LossBreakdown",
    "LossConfig",
    "MFEBlock",
    "MultiScaleSelectiveFusion",
    "SHISRCNet",
    "SHISRCNetConfig",
    "SHISRCNetLoss",
    "SHISRCNetOutput",
    "SKConv",
    "SKNet",
    "SKNetFPNClassifier",
    "SRMFENet",
    "SRMFENetConfig",
    "bicubic_upsample",
    "focal_loss",
    "load_checkpoint",
    "nt_xent_loss",
    "read_checkpoint_info",
    "save_checkpoint",
]
