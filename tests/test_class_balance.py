"""Class balance: inverse-frequency focal weights and a balanced sampler."""

from dataclasses import replace

import numpy as np
import pytest

from napari_shisrcnet.model import load_checkpoint
from napari_shisrcnet.train.class_balance import balanced_order, inverse_frequency
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.loop import Trainer
from test_training import TINY


def test_inverse_frequency_weights_by_hand():
    weights = inverse_frequency(np.array([0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([2 / 3, 4 / 3, 0.0])  # mean 1 over present


def test_the_sampler_draws_each_class_equally_often():
    labels = np.array([0] * 90 + [1] * 10)
    drawn = np.concatenate(
        [labels[balanced_order(labels, np.random.default_rng(seed))] for seed in range(20)]
    )
    assert (drawn == 1).mean() == pytest.approx(0.5, abs=0.03)  # was 0.1 in the data
    order = balanced_order(labels, np.random.default_rng(0))
    assert order == balanced_order(labels, np.random.default_rng(0))  # seeded


def test_loss_balance_is_recorded_and_the_sampler_trains(tmp_path, breakhis_tree):
    config = TrainConfig(epochs=1, max_steps=1, magnification=100, class_balance="loss", **TINY)
    trainer = Trainer(breakhis_tree, tmp_path / "loss", config)
    trainer.run()
    counts = np.bincount(trainer.labels[trainer.split.train])
    alpha = trainer.joint_loss.focal_alpha.tolist()
    assert alpha[0] / alpha[1] == pytest.approx(counts[1] / counts[0], rel=1e-4)
    _, info = load_checkpoint(tmp_path / "loss" / "best.safetensors")
    assert info.provenance["train_config"]["loss"]["focal_alpha"] == pytest.approx(alpha)
    sampler = TrainConfig(epochs=1, max_steps=1, magnification=100, class_balance="sampler", **TINY)
    Trainer(breakhis_tree, tmp_path / "sampler", sampler).run()
    with pytest.raises(ValueError, match="none, loss or sampler"):
        TrainConfig(class_balance="oversample")


def test_stain_jitter_strength_reaches_the_training_pairs(tmp_path, breakhis_tree):
    config = TrainConfig(epochs=1, max_steps=0, magnification=100, stain_jitter=0.2, **TINY)
    trainer = Trainer(breakhis_tree, tmp_path / "stain", config)
    assert (trainer.train_set.stain.scale, trainer.train_set.stain.shift) == (0.2, 0.1)
    default = Trainer(breakhis_tree, tmp_path / "default", replace(config, stain_jitter=0.1))
    assert (default.train_set.stain.scale, default.train_set.stain.shift) == (0.1, 0.05)
    with pytest.raises(ValueError, match="stain jitter"):
        TrainConfig(stain_jitter=1.5)
