"""Training configuration: the paper's defaults, one copy for CLI, widget and checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..data.degradations import DEGRADATIONS, is_degradation
from ..model import LossConfig, SHISRCNetConfig
from ..model.bundled import bundled_name
from .class_balance import CLASS_BALANCE
from .decision import DECISION_RULES

STAGES = ("joint", "sr", "classifier")
#: The architecture a fresh network gets (the paper's widths; the fusion measured best).
#: Fine-tuning (--init) takes each one the user leaves unset from the checkpoint instead.
DEFAULT_ARCHITECTURE = {
    "sr_channels": 64,
    "sr_blocks": 3,
    "sr_fusion": "selective",
    "classifier_width": 1.0,
}
PATIENT_TEST_FRACTION = 0.2
LEAKY_TEST_FRACTION = 0.3  # the paper's image-level 7:3


@dataclass(frozen=True)
class TrainConfig:
    """Paper: Adam 1e-3, lr x0.9 every 2 epochs, batch 8, 100 epochs, 384 px HR crops,
    loss weights 0.6 / 0.3 / 0.1, NT-Xent temperature 0.5.

    ``stage``: ``joint`` (SHISRCNet), ``sr`` (SR module only, L1), ``classifier``
    (the paper's "CF module only" baseline: classifier on HR crops, focal loss).
    """

    scale: int = 2
    classes: str = "binary"
    stage: str = "joint"
    epochs: int = 100
    max_steps: int | None = None
    batch_size: int = 8
    hr_crop_px: int = 384
    # How LR is made from HR: bicubic (the paper's), scanner, realistic, or a mixture such as
    # scanner+bicubic (data/degradations).
    degradation: str = "bicubic"
    lr: float = 1e-3
    lr_decay: float = 0.9
    lr_decay_every_epochs: int = 2
    loss: LossConfig = field(default_factory=LossConfig)
    # The architecture; None: DEFAULT_ARCHITECTURE's, or the checkpoint's being fine-tuned
    # (--init; train/build.with_init_architecture). MFE branch fusion: selective (learned;
    # measured best, docs/model.md), paper or mean.
    sr_channels: int | None = None
    sr_blocks: int | None = None
    bicubic_residual: bool = True
    sr_fusion: str | None = None
    classifier_width: float | None = None
    projection_dim: int | None = None
    magnification: int | None = None
    # µm/px of the training HR images, recorded in checkpoints so that slides are read at the
    # model's pixel size (None: unknown; see docs/training.md for BreaKHis).
    train_mpp: float | None = None
    split: str = "patient"  # or "leaky" (the paper's image-level 7:3, for comparison only)
    val_fraction: float = 0.2
    # Held-out test share: None = 0.2 of the patients (patient split), 0.3 of the images
    # (leaky split: the paper's 7:3).
    test_fraction: float | None = None
    folds: int = 1
    fold: int = 0
    # Fine-tune from these weights: one checkpoint of the trained architecture, or an SR-only
    # and/or a classifier-only checkpoint for the two halves of a joint model.
    init_checkpoints: tuple[str, ...] = ()
    repeats: int = 1  # random crops per training image per epoch (BasicSR's enlarge ratio)
    # Validate and save an exponential moving average of the weights (None: the weights).
    ema_decay: float | None = None
    val_crop_px: int | None = None  # centre crop of validation images (None: whole image)
    val_every: int = 1  # validate every N epochs (and after the last)
    class_balance: str = "none"  # or "loss" / "sampler" (train/class_balance.py)
    # HED stain augmentation (Tellez et al. 2019): each stain's optical density scaled by a
    # factor in [1 - s, 1 + s] and shifted by up to s / 2.
    stain_jitter: float = 0.1
    # argmax (the paper's) or validation: a binary decision threshold chosen on the
    # validation images, stored as class logit offsets (train/decision.py).
    decision: str = "argmax"
    early_stopping_patience: int | None = 20
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    amp: bool = True

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got '{self.stage}'")
        if self.split not in ("patient", "leaky"):
            raise ValueError(f"split must be 'patient' or 'leaky', got '{self.split}'")
        if self.test_fraction is not None and not 0 <= self.test_fraction < 1:
            raise ValueError(f"test fraction must be in [0, 1), got {self.test_fraction}")
        if not is_degradation(self.degradation):
            raise ValueError(
                f"degradation must be one of {', '.join(DEGRADATIONS)} or a mixture such as "
                f"scanner+bicubic, got '{self.degradation}'"
            )
        if self.class_balance not in CLASS_BALANCE:
            raise ValueError(
                f"class balance must be {_one_of(CLASS_BALANCE)}, got '{self.class_balance}'"
            )
        if self.decision not in DECISION_RULES:
            raise ValueError(f"decision must be {_one_of(DECISION_RULES)}, got '{self.decision}'")
        if self.decision == "validation" and (self.stage == "sr" or self.classes != "binary"):
            raise ValueError(
                "a decision threshold chosen on validation needs a binary classifier "
                "(--classes binary, stage joint or classifier)"
            )
        if not 0 <= self.stain_jitter < 1:
            raise ValueError(f"stain jitter must be in [0, 1), got {self.stain_jitter}")
        if self.val_every < 1:
            raise ValueError(f"val_every must be at least 1, got {self.val_every}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be between 0 and 1, got {self.ema_decay}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")
        checkpoints = self.init_checkpoints or ()
        checkpoints = (checkpoints,) if isinstance(checkpoints, str) else tuple(checkpoints)
        # "default": the bundled model of the scale being trained (default-x4 for x4).
        object.__setattr__(
            self, "init_checkpoints", tuple(bundled_name(c, self.scale) for c in checkpoints)
        )
        if isinstance(self.loss, dict):
            object.__setattr__(self, "loss", LossConfig(**self.loss))

    def model_config(self, num_classes: int) -> SHISRCNetConfig:
        return SHISRCNetConfig().with_overrides(
            scale=self.scale,
            channels=self.architecture("sr_channels"),
            n_blocks=self.architecture("sr_blocks"),
            bicubic_residual=self.bicubic_residual,
            fusion=self.architecture("sr_fusion"),
            num_classes=num_classes,
            width=self.architecture("classifier_width"),
            projection_dim=self.projection_dim,
        )

    def architecture(self, name: str):
        """An architecture setting, DEFAULT_ARCHITECTURE's where it is unset."""
        value = getattr(self, name)
        return DEFAULT_ARCHITECTURE[name] if value is None else value

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = dict(values)
        # Trained before fusion was a setting: with the paper's MSF.
        values.setdefault("sr_fusion", "paper")
        if values.get("init_checkpoint"):  # checkpoints written before init_checkpoints
            values.setdefault("init_checkpoints", (values["init_checkpoint"],))
        return cls(**{k: v for k, v in values.items() if k in known})


def _one_of(choices: tuple[str, ...]) -> str:
    """'a, b or c'."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}"
