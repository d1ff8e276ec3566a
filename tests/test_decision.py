"""A decision threshold chosen on validation: chosen right, stored, applied everywhere."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from napari_shisrcnet.api import load_model
from napari_shisrcnet.cli import main
from napari_shisrcnet.engine.inference import TileModel
from napari_shisrcnet.errors import OptionError
from napari_shisrcnet.model import SHISRCNet, SHISRCNetConfig
from napari_shisrcnet.model.checkpoint import read_checkpoint_info
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.decision import choose_logit_offset, decided_probabilities
from napari_shisrcnet.train.loop import Trainer
from test_training import TINY


def _images(margins: list[float], tiles: int = 3) -> list[np.ndarray]:
    """One (tiles, 2) logit array per image whose tiles have log-odds ``margin`` of class 1."""
    return [np.tile([[0.0, m]], (tiles, 1)).astype(np.float32) for m in margins]


def test_a_classifier_leaning_to_class_1_gets_the_threshold_between_the_classes():
    # Every benign image has log-odds +0.5 (argmax calls it malignant), every malignant +2.
    logits = _images([0.5, 0.5, 0.5, 2.0, 2.0, 2.0])
    labels = [0, 0, 0, 1, 1, 1]
    decision = choose_logit_offset(logits, labels)
    offset = decision["class_logit_offsets"][1]
    assert decision["balanced_accuracy_argmax"] == 0.5
    assert decision["balanced_accuracy"] == 1.0
    # Any offset in (-2, -0.5) separates them; the middle of that run is chosen.
    assert offset == pytest.approx(-1.25, abs=0.01)
    predicted = decided_probabilities(logits, (0.0, offset)).argmax(1)
    assert predicted.tolist() == labels
    # The threshold on the unshifted probability of one tile: sigmoid(-offset).
    assert decision["threshold"] == pytest.approx(1 / (1 + np.exp(offset)))


def test_argmax_is_kept_when_it_is_already_best():
    logits = _images([-1.0, -0.2, 0.3, 1.5])
    decision = choose_logit_offset(logits, [0, 0, 1, 1])
    assert decision["class_logit_offsets"] == [0.0, 0.0]
    assert decision["balanced_accuracy"] == decision["balanced_accuracy_argmax"] == 1.0


def test_the_tile_model_applies_the_offsets_to_every_tile():
    torch.manual_seed(0)
    network = SHISRCNet(SHISRCNetConfig().with_overrides(channels=8, n_blocks=1, width=0.125))
    tiles = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    plain = TileModel(network, "cpu", autocast=False).classify(tiles)
    shifted = TileModel(network, "cpu", autocast=False, class_logit_offsets=(0.0, 1.0))
    expected = decided_probabilities(
        [np.log(plain) - np.log(plain[:, :1])], (0.0, 1.0)
    )  # one image of all four tiles: its mean
    result = shifted.classify(tiles)
    assert result.mean(0) == pytest.approx(expected[0], abs=1e-5)
    assert (result[:, 1] > plain[:, 1]).all()


@pytest.fixture(scope="module")
def decided(tmp_path_factory, breakhis_tree):
    out = tmp_path_factory.mktemp("decided")
    config = TrainConfig(epochs=2, max_steps=2, magnification=100, decision="validation", **TINY)
    trainer = Trainer(breakhis_tree, out, config)
    trainer.run()
    return trainer, out / "best.safetensors"


def test_training_records_the_rule_chosen_at_the_best_validation(decided):
    trainer, checkpoint = decided
    info = read_checkpoint_info(checkpoint)
    decision = info.provenance["decision"]
    assert decision["rule"] == "validation"
    assert decision["n_images"] == len(trainer.split.val)
    best = next(r for r in trainer.history if r["epoch"] == trainer.counters["best_epoch"])
    assert best["decision_offset"] == decision["class_logit_offsets"][1]
    assert best["balanced_accuracy_image"] == pytest.approx(decision["balanced_accuracy"])
    assert best["balanced_accuracy_image"] >= decision["balanced_accuracy_argmax"]


def test_evaluate_and_the_engine_use_the_stored_rule(decided, breakhis_tree, tmp_path):
    _, checkpoint = decided
    offsets = read_checkpoint_info(checkpoint).class_logit_offsets
    assert offsets is not None  # this tiny run's argmax called every image malignant
    report_file = tmp_path / "report.json"
    args = ["evaluate", str(breakhis_tree), "--checkpoint", str(checkpoint)]
    assert main([*args, "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["class_logit_offsets"] == list(offsets)
    model = load_model(checkpoint, "cpu")
    assert model.class_logit_offsets == offsets
    assert "+offsets" in model.identity  # results are cached by identity


def test_a_rule_for_two_classes_is_refused_where_it_cannot_apply(breakhis_tree, tmp_path):
    with pytest.raises(ValueError, match="binary classifier"):
        TrainConfig(classes="subtype", decision="validation")
    with pytest.raises(ValueError, match="binary classifier"):
        TrainConfig(stage="sr", decision="validation")
    with pytest.raises(ValueError, match="argmax or validation"):
        TrainConfig(decision="youden")
    folders = tmp_path / "three"
    for index, name in enumerate(("a", "b", "c")):
        (folders / name).mkdir(parents=True)
        for image in range(2):
            pixels = np.full((64, 64, 3), 40 * index + image, np.uint8)
            iio.imwrite(folders / name / f"{image}.png", pixels)
    with pytest.raises(OptionError, match="two-class threshold"):
        Trainer(folders, tmp_path / "out", TrainConfig(decision="validation", **TINY))
    assert not (tmp_path / "out").exists()


def test_a_state_saved_before_decision_rules_existed_resumes(tmp_path, breakhis_tree):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from napari_shisrcnet.train.state import STATE_KEY

    config = TrainConfig(epochs=1, max_steps=1, magnification=100, **TINY)
    Trainer(breakhis_tree, tmp_path, config).run()
    state = tmp_path / "last-state.safetensors"
    with safe_open(str(state), "pt") as handle:
        metadata = json.loads(handle.metadata()[STATE_KEY])
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    del metadata["counters"]["decision"]  # as written before --decision existed
    save_file(tensors, str(state), metadata={STATE_KEY: json.dumps(metadata)})
    resumed = Trainer(breakhis_tree, tmp_path, TrainConfig(**{**config.to_dict(), "epochs": 2}))
    resumed.run(resume=True)
    assert resumed.counters["epoch"] == 2
    assert read_checkpoint_info(tmp_path / "last.safetensors").provenance["decision"] is None


def test_evaluation_applies_the_offsets_it_is_given(decided):
    # The evaluate command passes the checkpoint's offsets on; this checks they are used.
    from dataclasses import replace

    from napari_shisrcnet.model import load_checkpoint
    from napari_shisrcnet.train.evaluate import evaluate_records

    trainer, checkpoint = decided
    model, _ = load_checkpoint(checkpoint)
    records = [trainer.records[i] for i in trainer.split.test]
    labels = trainer.labels[trainer.split.test]
    config = replace(trainer.config, val_crop_px=None)

    def predicted(offsets):
        metrics = evaluate_records(
            model, records, labels, trainer.class_names, config, class_logit_offsets=offsets
        )
        return np.asarray(metrics["confusion_matrix"]).sum(0)  # images per predicted class

    assert predicted((0.0, 50.0)).tolist() == [0, len(records)]  # all malignant
    assert predicted((0.0, -50.0)).tolist() == [len(records), 0]  # all benign
