"""SHISRCNet: SR module and CF module trained jointly (paper Fig. 1a).

LR -> SRMFENet -> SR -> classifier. In training the HR image also goes through the
classifier, and the two branches' multi-scale features feed the NT-Xent loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .classifier import ClassifierConfig, SKNetFPNClassifier
from .srmfenet import SRMFENet, SRMFENetConfig


@dataclass(frozen=True)
class SHISRCNetConfig:
    """Both modules' configs plus the optional SimCLR projection head for NT-Xent."""

    sr: SRMFENetConfig = field(default_factory=SRMFENetConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    projection_dim: int | None = None

    def with_overrides(self, **overrides) -> SHISRCNetConfig:
        """Route flat keyword overrides (``scale=4, num_classes=8``) to the right sub-config."""
        sr_keys = {f.name for f in fields(SRMFENetConfig)}
        classifier_keys = {f.name for f in fields(ClassifierConfig)}
        unknown = set(overrides) - sr_keys - classifier_keys - {"projection_dim"}
        if unknown:
            raise TypeError(f"unknown SHISRCNet option(s): {', '.join(sorted(unknown))}")
        return replace(
            self,
            sr=replace(self.sr, **{k: v for k, v in overrides.items() if k in sr_keys}),
            classifier=replace(
                self.classifier, **{k: v for k, v in overrides.items() if k in classifier_keys}
            ),
            projection_dim=overrides.get("projection_dim", self.projection_dim),
        )

    def to_dict(self) -> dict:
        return {
            "sr": self.sr.to_dict(),
            "classifier": self.classifier.to_dict(),
            "projection_dim": self.projection_dim,
        }

    @classmethod
    def from_dict(cls, values: dict) -> SHISRCNetConfig:
        return cls(
            sr=SRMFENetConfig(**values["sr"]),
            classifier=ClassifierConfig(**values["classifier"]),
            projection_dim=values.get("projection_dim"),
        )


class SHISRCNetOutput(NamedTuple):
    """What one forward pass returns; the ``*_hr`` fields are None without an HR input."""

    sr: Tensor
    logits_sr: Tensor
    features_sr: Tensor
    embedding_sr: Tensor
    logits_hr: Tensor | None = None
    features_hr: Tensor | None = None
    embedding_hr: Tensor | None = None


class SHISRCNet(nn.Module):
    """The joint network. ``SHISRCNet(scale=4, num_classes=8)`` or ``SHISRCNet(config)``."""

    def __init__(self, config: SHISRCNetConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = (config or SHISRCNetConfig()).with_overrides(**overrides)
        self.sr_module = SRMFENet(self.config.sr)
        self.classifier = SKNetFPNClassifier(self.config.classifier)
        self.projection_head: nn.Module = nn.Identity()
        if self.config.projection_dim:
            # SimCLR's MLP head: the contrast acts on its output, the classifier keeps the features.
            feature_dim = self.classifier.feature_dim
            self.projection_head = nn.Sequential(
                nn.Linear(feature_dim, feature_dim),
                nn.ReLU(inplace=True),
                nn.Linear(feature_dim, self.config.projection_dim),
            )

    @property
    def scale(self) -> int:
        return self.config.sr.scale

    def forward(self, lr: Tensor, hr: Tensor | None = None) -> SHISRCNetOutput:
        sr = self.sr_module(lr)
        if hr is None:
            logits, features = self.classifier(sr)
            return SHISRCNetOutput(sr, logits, features, self.projection_head(features))
        if hr.shape != sr.shape:
            raise ValueError(f"HR shape {tuple(hr.shape)} != SR shape {tuple(sr.shape)}")
        # One classifier pass over SR and HR together: same cost, shared BN statistics.
        logits, features = self.classifier(torch.cat([sr, hr]))
        embeddings = self.projection_head(features)
        n = lr.shape[0]
        return SHISRCNetOutput(
            sr, logits[:n], features[:n], embeddings[:n], logits[n:], features[n:], embeddings[n:]
        )
