"""SRMFENet, the SR module of SHISRCNet (paper section 2.1).

Head conv -> MFE blocks (cascaded atrous convs fused by multi-scale selective
fusion) -> body conv with a feature residual -> pixel-shuffle upsampler -> tail.
Optionally the whole network predicts a residual over bicubic upsampling of the
input (on by default; see docs/model.md for why).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..geometry import SUPPORTED_SCALES

FUSIONS = ("paper", "selective", "mean")
#: Initial scale of the last conv when predicting a residual over bicubic (see docs/model.md).
RESIDUAL_INIT_SCALE = 0.1


@dataclass(frozen=True)
class SRMFENetConfig:
    """Hyper-parameters of SRMFENet; defaults are the paper's."""

    scale: int = 2
    channels: int = 64
    n_blocks: int = 3
    dilation_rates: tuple[int, ...] = (1, 2, 4, 8)
    bicubic_residual: bool = True
    #: How an MFE block fuses its branches: "paper" (MSF as written, parameter-free),
    #: "selective" (learned, SKNet-style) or "mean" (a plain average, the baseline).
    fusion: str = "paper"

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {self.scale}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.channels < 1 or self.n_blocks < 1 or not self.dilation_rates:
            raise ValueError("channels, n_blocks and dilation_rates must be positive/non-empty")
        # JSON round-trips give lists; keep the frozen config hashable.
        object.__setattr__(self, "dilation_rates", tuple(int(r) for r in self.dilation_rates))

    def to_dict(self) -> dict:
        return asdict(self)


def bicubic_upsample(image: Tensor, scale: int) -> Tensor:
    """Bicubic upsampling (Keys a=-0.75, as in torch/OpenCV), not clamped."""
    return F.interpolate(image, scale_factor=scale, mode="bicubic", align_corners=False)


class MultiScaleSelectiveFusion(nn.Module):
    """MSF: GAP per branch -> sigmoid -> softmax across branches per channel -> weighted sum.

    Exactly the paper's description; it has no learnable parameters (the authors'
    code adds a 1x1 conv and a ReLU before the sigmoid, see docs/model.md).
    """

    def branch_weights(self, branches: Tensor) -> Tensor:
        """Fusion weights (batch, n_branches, channels, 1, 1); they sum to 1 over branches."""
        channel_scores = torch.sigmoid(branches.mean(dim=(-2, -1), keepdim=True))
        return torch.softmax(channel_scores, dim=1)

    def forward(self, branches: Tensor) -> Tensor:
        """Fuse ``branches`` of shape (batch, n_branches, channels, H, W)."""
        return (self.branch_weights(branches) * branches).sum(dim=1)


class SelectiveFusion(nn.Module):
    """Learned selective fusion, as SKNet selects kernels (Li et al., CVPR 2019): a pooled
    descriptor of the branches' sum -> a reduced FC + ReLU -> one FC per branch -> softmax
    across branches, per channel -> weighted sum.

    The paper's MSF cannot select: its branches are ReLU outputs, so their pooled means
    are >= 0, the sigmoid >= 0.5 and the softmax over four branches stays in [0.17, 0.36]
    (docs/model.md). Here the scores are unbounded logits, so a branch can win or vanish.
    """

    def __init__(self, channels: int, n_branches: int, reduction: int = 4, min_dim: int = 16):
        super().__init__()
        hidden = max(channels // reduction, min_dim)
        self.squeeze = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True))
        self.select = nn.Linear(hidden, channels * n_branches)
        self.n_branches = n_branches

    def branch_weights(self, branches: Tensor) -> Tensor:
        """Fusion weights (batch, n_branches, channels, 1, 1); they sum to 1 over branches."""
        batch, n_branches, channels = branches.shape[:3]
        descriptor = branches.sum(dim=1).mean(dim=(-2, -1))
        logits = self.select(self.squeeze(descriptor)).view(batch, n_branches, channels, 1, 1)
        return torch.softmax(logits, dim=1)

    def forward(self, branches: Tensor) -> Tensor:
        return (self.branch_weights(branches) * branches).sum(dim=1)


class MeanFusion(nn.Module):
    """The branches' plain average: the baseline a selective fusion must beat."""

    def branch_weights(self, branches: Tensor) -> Tensor:
        shape = (*branches.shape[:3], 1, 1)
        return branches.new_full(shape, 1.0 / branches.shape[1])

    def forward(self, branches: Tensor) -> Tensor:
        return branches.mean(dim=1)


def make_fusion(kind: str, channels: int, n_branches: int) -> nn.Module:
    """The fusion module a config names (see :attr:`SRMFENetConfig.fusion`)."""
    if kind == "selective":
        return SelectiveFusion(channels, n_branches)
    return MeanFusion() if kind == "mean" else MultiScaleSelectiveFusion()


class MFEBlock(nn.Module):
    """Multi-features extraction block: Y1 = conv_r1(X), Yi = conv_ri(X + Y(i-1)); X + MSF(Y)."""

    def __init__(
        self, channels: int, dilation_rates: tuple[int, ...] = (1, 2, 4, 8), fusion: str = "paper"
    ) -> None:
        super().__init__()
        self.atrous_convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=rate, dilation=rate) for rate in dilation_rates
        )
        self.activation = nn.ReLU(inplace=True)
        self.fusion = make_fusion(fusion, channels, len(dilation_rates))

    def branch_outputs(self, x: Tensor) -> Tensor:
        outputs = []
        previous = None
        for conv in self.atrous_convs:
            branch_input = x if previous is None else x + previous
            previous = self.activation(conv(branch_input))
            outputs.append(previous)
        return torch.stack(outputs, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fusion(self.branch_outputs(x))


class PixelShuffleUpsampler(nn.Sequential):
    """log2(scale) stages of conv (C -> 4C), PixelShuffle(2), LeakyReLU(0.1)."""

    def __init__(self, channels: int, scale: int) -> None:
        stages: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):
            stages += [
                nn.Conv2d(channels, 4 * channels, 3, padding=1),
                nn.PixelShuffle(2),
                nn.LeakyReLU(0.1, inplace=True),
            ]
        super().__init__(*stages)


class SRMFENet(nn.Module):
    """The SR module. Input and output are RGB in [0, 1], shape (batch, 3, H, W).

    Build with keyword overrides of :class:`SRMFENetConfig`, e.g. ``SRMFENet(scale=4)``,
    or pass a whole config. In eval mode the output is clamped to [0, 1].
    """

    def __init__(self, config: SRMFENetConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = replace(config or SRMFENetConfig(), **overrides)
        channels = self.config.channels
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.blocks = nn.Sequential(
            *(
                MFEBlock(channels, self.config.dilation_rates, self.config.fusion)
                for _ in range(self.config.n_blocks)
            )
        )
        self.body_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsampler = PixelShuffleUpsampler(channels, self.config.scale)
        self.tail = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(channels, 3, 3, padding=1),
        )
        if self.config.bicubic_residual:
            # Start near bicubic: a small (not zero, so every layer gets gradients) residual.
            last = self.tail[-1]
            assert isinstance(last, nn.Conv2d) and last.bias is not None
            with torch.no_grad():
                last.weight.mul_(RESIDUAL_INIT_SCALE)
                last.bias.zero_()

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, lr: Tensor) -> Tensor:
        features = self.head(lr)
        features = features + self.body_conv(self.blocks(features))
        sr = self.tail(self.upsampler(features))
        if self.config.bicubic_residual:
            sr = sr + bicubic_upsample(lr, self.config.scale)
        if not self.training:
            sr = sr.clamp(0.0, 1.0)
        return sr


class BicubicSR(nn.Module):
    """Bicubic upsampling behind the SR interface, so any result can be set beside it."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale}")
        self.scale = scale

    def forward(self, lr: Tensor) -> Tensor:
        return bicubic_upsample(lr, self.scale).clamp(0.0, 1.0)
