"""SHISRCNet's losses (paper section 2.3): L1 + focal + NT-Xent.

total = l1_weight * L1(SR, HR)
      + focal_weight * mean(FL(SR-branch logits), FL(HR-branch logits))
      + ntxent_weight * NT-Xent(SR-branch embeddings, HR-branch embeddings)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .shisrcnet import SHISRCNetOutput


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and parameters; defaults are the paper's (gamma: Lin et al.'s default)."""

    l1_weight: float = 0.6
    focal_weight: float = 0.3
    ntxent_weight: float = 0.1
    focal_gamma: float = 2.0
    focal_alpha: tuple[float, ...] | None = None
    temperature: float = 0.5

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.focal_alpha is not None:
            object.__setattr__(self, "focal_alpha", tuple(float(a) for a in self.focal_alpha))

    def to_dict(self) -> dict:
        return asdict(self)


def focal_loss(
    logits: Tensor, targets: Tensor, gamma: float = 2.0, alpha: Tensor | None = None
) -> Tensor:
    """Mean multi-class focal loss, -alpha_t (1 - p_t)^gamma log p_t (Lin et al. 2017).

    With ``gamma=0`` and no ``alpha`` it equals cross-entropy.
    """
    log_p_true = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    modulation = (1.0 - log_p_true.exp()).clamp(min=0.0) ** gamma
    per_sample = -modulation * log_p_true
    if alpha is not None:
        per_sample = alpha.to(logits)[targets] * per_sample
    return per_sample.mean()


def nt_xent_loss(view_a: Tensor, view_b: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (SimCLR) between two views; row i of ``view_a`` and ``view_b`` are a positive pair.

    Vectors are L2-normalised; each of the 2N samples is contrasted with the other
    2N - 2 as negatives; the loss is the mean over all 2N anchors.
    """
    n = view_a.shape[0]
    embeddings = F.normalize(torch.cat([view_a, view_b]), dim=1)
    similarity = embeddings @ embeddings.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=similarity.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(similarity.device)
    return F.cross_entropy(similarity, positives)


class LossBreakdown(NamedTuple):
    total: Tensor
    l1: Tensor
    focal: Tensor
    ntxent: Tensor


class SHISRCNetLoss(nn.Module):
    """The joint loss; needs an output computed with an HR input (training forward)."""

    focal_alpha: Tensor | None  # a buffer (registered in __init__)

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config or LossConfig()
        alpha = self.config.focal_alpha
        self.register_buffer(
            "focal_alpha", None if alpha is None else torch.tensor(alpha), persistent=False
        )

    def forward(self, output: SHISRCNetOutput, hr: Tensor, targets: Tensor) -> LossBreakdown:
        if output.logits_hr is None or output.embedding_hr is None:
            raise ValueError("the joint loss needs the HR branch: call the model with (lr, hr)")
        cfg = self.config
        l1 = F.l1_loss(output.sr, hr)
        focal = 0.5 * (
            focal_loss(output.logits_sr, targets, cfg.focal_gamma, self.focal_alpha)
            + focal_loss(output.logits_hr, targets, cfg.focal_gamma, self.focal_alpha)
        )
        ntxent = nt_xent_loss(output.embedding_sr, output.embedding_hr, cfg.temperature)
        total = cfg.l1_weight * l1 + cfg.focal_weight * focal + cfg.ntxent_weight * ntxent
        return LossBreakdown(total, l1, focal, ntxent)
