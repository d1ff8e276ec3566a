"""Selective-kernel network (Li et al., CVPR 2019), the CF module's backbone.

SKNet-26 is ResNeXt-style with [2, 2, 2, 2] bottleneck blocks whose grouped 3x3
conv is replaced by an SK convolution. A width multiplier scales every stage so
a narrow variant can be trained on a CPU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def make_divisible(value: float, divisor: int) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class SKConv(nn.Module):
    """Selective-kernel convolution: split into M branches, fuse, select.

    Branch m is a grouped 3x3 conv with dilation m + 1 (a dilated 3x3 stands in for
    the paper's 5x5, as in the SKNet paper). Fuse: s = GAP(sum of branches),
    z = ReLU(W s) with max(C / r, L) units; select: per-branch logits, softmax
    across branches per channel, weighted sum.
    """

    def __init__(
        self,
        channels: int,
        stride: int = 1,
        branches: int = 2,
        groups: int = 32,
        reduction: int = 16,
        min_attention_dim: int = 32,
    ) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"SKConv channels ({channels}) must be divisible by groups ({groups})")
        self.branch_convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(
                    channels,
                    channels,
                    3,
                    stride=stride,
                    padding=m + 1,
                    dilation=m + 1,
                    groups=groups,
                    bias=False,
                ),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
            for m in range(branches)
        )
        attention_dim = max(channels // reduction, min_attention_dim)
        self.squeeze = nn.Sequential(nn.Linear(channels, attention_dim), nn.ReLU(inplace=True))
        self.select = nn.Linear(attention_dim, channels * branches)

    def branch_weights(self, branches: Tensor) -> Tensor:
        """Selection weights (batch, M, C, 1, 1), summing to 1 over branches."""
        batch, n_branches, channels = branches.shape[:3]
        summary = self.squeeze(branches.sum(dim=1).mean(dim=(-2, -1)))
        logits = self.select(summary).view(batch, n_branches, channels, 1, 1)
        return torch.softmax(logits, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        branches = torch.stack([conv(x) for conv in self.branch_convs], dim=1)
        return (self.branch_weights(branches) * branches).sum(dim=1)


class SKBottleneck(nn.Module):
    """1x1 reduce -> SKConv (carries the stride) -> 1x1 expand, plus a projection shortcut."""

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int, **sk_options
    ) -> None:
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
        )
        self.sk_conv = SKConv(mid_channels, stride=stride, **sk_options)
        self.expand = nn.Sequential(
            nn.Conv2d(mid_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.expand(self.sk_conv(self.reduce(x))) + self.shortcut(x))


class SKNet(nn.Module):
    """SKNet backbone returning the output of every stage (strides 4, 8, 16, 32).

    ``stage_blocks=(2, 2, 2, 2)`` is SKNet-26; ``width=1.0`` gives the standard
    ResNeXt-50 (32x4d) widths: 64-channel stem, stage outputs 256/512/1024/2048.
    """

    base_mid_channels = (128, 256, 512, 1024)
    base_out_channels = (256, 512, 1024, 2048)

    def __init__(
        self,
        stage_blocks: tuple[int, ...] = (2, 2, 2, 2),
        width: float = 1.0,
        branches: int = 2,
        groups: int = 32,
        reduction: int = 16,
        min_attention_dim: int = 32,
    ) -> None:
        super().__init__()
        if len(stage_blocks) != 4:
            raise ValueError("SKNet has four stages; stage_blocks needs four entries")
        stem_channels = make_divisible(64 * width, 8)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        sk_options = dict(
            branches=branches,
            groups=groups,
            reduction=reduction,
            min_attention_dim=min_attention_dim,
        )
        self.stages = nn.ModuleList()
        self.stage_channels: list[int] = []
        in_channels = stem_channels
        for index, n_blocks in enumerate(stage_blocks):
            mid = make_divisible(self.base_mid_channels[index] * width, groups)
            out = make_divisible(self.base_out_channels[index] * width, 8)
            blocks = []
            for block_index in range(n_blocks):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(SKBottleneck(in_channels, mid, out, stride, **sk_options))
                in_channels = out
            self.stages.append(nn.Sequential(*blocks))
            self.stage_channels.append(out)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
