"""The CF module (paper section 2.2): SKNet backbone + FPN fused top-down by CSF blocks.

Each pyramid level is globally average-pooled; the pooled vectors are concatenated
into the multi-scale feature vector (used by the NT-Xent loss) and a fully
connected layer maps it to class logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .sknet import SKNet, make_divisible

#: Smallest input side: the backbone's total stride, so the deepest level has >= 1 pixel.
MIN_INPUT_SIDE_PX = 32


@dataclass(frozen=True)
class ClassifierConfig:
    """Hyper-parameters of the CF module; SK defaults follow SKNet (M=2, G=32, r=16, L=32)."""

    num_classes: int = 2
    width: float = 1.0
    stage_blocks: tuple[int, ...] = (2, 2, 2, 2)
    sk_branches: int = 2
    sk_groups: int = 32
    sk_reduction: int = 16
    sk_min_attention_dim: int = 32
    fpn_channels: int = 256
    fpn_levels: int = 3
    csf_reduction: int = 16
    csf_min_attention_dim: int = 32
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if not 2 <= self.fpn_levels <= 4:
            raise ValueError(f"fpn_levels must be 2, 3 or 4, got {self.fpn_levels}")
        object.__setattr__(self, "stage_blocks", tuple(int(b) for b in self.stage_blocks))

    def to_dict(self) -> dict:
        return asdict(self)


class ClassifierOutput(NamedTuple):
    logits: Tensor
    features: Tensor


class CSFBlock(nn.Module):
    """Cross-scale selective fusion of a fine map Xh and a coarse map Xl (same channels).

    U = Xh + Up(Xl); S = GAP(U); Z = ReLU(Wc S); a = Wa Z, b = Wb Z;
    softmax over {a, b} per channel; F = a * Xh + b * Up(Xl).
    """

    def __init__(self, channels: int, reduction: int = 16, min_attention_dim: int = 32) -> None:
        super().__init__()
        attention_dim = max(channels // reduction, min_attention_dim)
        self.compact = nn.Sequential(nn.Linear(channels, attention_dim), nn.ReLU(inplace=True))
        self.weight_fine = nn.Linear(attention_dim, channels)
        self.weight_coarse = nn.Linear(attention_dim, channels)

    @staticmethod
    def upsample_to(coarse: Tensor, fine: Tensor) -> Tensor:
        # Nearest to the exact fine size, so odd map sizes (any input side) work.
        return F.interpolate(coarse, size=fine.shape[-2:], mode="nearest")

    def attention(self, fine: Tensor, coarse_up: Tensor) -> tuple[Tensor, Tensor]:
        """Channel weights (a, b), each (batch, C, 1, 1), with a + b = 1."""
        summary = self.compact((fine + coarse_up).mean(dim=(-2, -1)))
        logits = torch.stack([self.weight_fine(summary), self.weight_coarse(summary)], dim=1)
        weights = torch.softmax(logits, dim=1)[..., None, None]
        return weights[:, 0], weights[:, 1]

    def forward(self, fine: Tensor, coarse: Tensor) -> Tensor:
        coarse_up = self.upsample_to(coarse, fine)
        weight_fine, weight_coarse = self.attention(fine, coarse_up)
        return weight_fine * fine + weight_coarse * coarse_up


class SKNetFPNClassifier(nn.Module):
    """CF module. Input RGB in [0, 1], any side >= ``MIN_INPUT_SIDE_PX``.

    The FPN is built on the last ``fpn_levels`` backbone stages (strides 8, 16, 32
    by default), laterally projected to ``fpn_channels * width`` channels and fused
    top-down with :class:`CSFBlock`.
    """

    def __init__(self, config: ClassifierConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = cfg = replace(config or ClassifierConfig(), **overrides)
        self.backbone = SKNet(
            stage_blocks=cfg.stage_blocks,
            width=cfg.width,
            branches=cfg.sk_branches,
            groups=cfg.sk_groups,
            reduction=cfg.sk_reduction,
            min_attention_dim=cfg.sk_min_attention_dim,
        )
        pyramid_channels = make_divisible(cfg.fpn_channels * cfg.width, 8)
        level_inputs = self.backbone.stage_channels[-cfg.fpn_levels :]
        self.laterals = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, pyramid_channels, 1, bias=False),
                nn.BatchNorm2d(pyramid_channels),
                nn.ReLU(inplace=True),
            )
            for c in level_inputs
        )
        self.fusions = nn.ModuleList(
            CSFBlock(pyramid_channels, cfg.csf_reduction, cfg.csf_min_attention_dim)
            for _ in range(cfg.fpn_levels - 1)
        )
        self.feature_dim = pyramid_channels * cfg.fpn_levels
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.feature_dim, cfg.num_classes)

    def pyramid(self, image: Tensor) -> list[Tensor]:
        """FPN levels, finest first."""
        if min(image.shape[-2:]) < MIN_INPUT_SIDE_PX:
            raise ValueError(
                f"classifier input is {tuple(image.shape[-2:])} px; "
                f"each side must be >= {MIN_INPUT_SIDE_PX} px"
            )
        stages = self.backbone(image)[-self.config.fpn_levels :]
        laterals = [project(stage) for project, stage in zip(self.laterals, stages, strict=True)]
        levels = [laterals[-1]]
        for fine, fuse in zip(reversed(laterals[:-1]), reversed(self.fusions), strict=True):
            levels.insert(0, fuse(fine, levels[0]))
        return levels

    def forward(self, image: Tensor) -> ClassifierOutput:
        features = torch.cat([level.mean(dim=(-2, -1)) for level in self.pyramid(image)], dim=1)
        return ClassifierOutput(self.fc(self.dropout(features)), features)
