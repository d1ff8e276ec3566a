"""The bundled default model (present in this repository once trained; see docs/model-card.md)."""

from dataclasses import replace

import numpy as np
import pytest

from napari_shisrcnet import api
from napari_shisrcnet.model.bundled import BundledModelMissing, bundled_weights_path

try:
    BUNDLED = bundled_weights_path("default")
except BundledModelMissing:
    BUNDLED = None

pytestmark = pytest.mark.skipif(BUNDLED is None, reason="no bundled default weights")


def test_default_model_is_small_safe_and_documented():
    assert BUNDLED.stat().st_size < 8 * 2**20  # fp16, a few MB
    model = api.load_model("default", "cpu")
    assert model.scale == 2 and model.class_names == ("benign", "malignant")
    from napari_shisrcnet.model import read_checkpoint_info

    provenance = read_checkpoint_info(BUNDLED).provenance
    assert {"train_config", "data_root", "step", "note"} <= provenance.keys()


def test_default_model_runs_and_is_preselected(make_napari_viewer):
    model = api.load_model("default", "cpu")
    tiles = np.random.default_rng(0).integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    assert model.super_resolve(tiles).shape == (2, 192, 192, 3)
    probabilities = model.classify(tiles)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    from napari_shisrcnet.napari.widgets.classify import ClassifyTilesWidget

    assert ClassifyTilesWidget(make_napari_viewer()).model.value == "default"


def test_fine_tuning_starts_from_the_default_weights(tmp_path):
    import torch

    from napari_shisrcnet.model import load_checkpoint
    from napari_shisrcnet.train.build import build_model, initialise_from
    from napari_shisrcnet.train.config import TrainConfig

    bundled, info = load_checkpoint(BUNDLED)
    config = TrainConfig.from_dict(info.provenance["train_config"])
    model = build_model(config, 2)
    initialise_from(model, "default")
    for (name, value), expected in zip(
        model.state_dict().items(), bundled.state_dict().values(), strict=True
    ):
        assert torch.equal(value, expected), name
    mismatched = build_model(TrainConfig(sr_channels=8, sr_blocks=1, classifier_width=0.125), 2)
    with pytest.raises(ValueError, match="config differs from the one being trained"):
        initialise_from(mismatched, "default")


def test_init_default_takes_the_bundled_architecture_of_the_scale_trained():
    from napari_shisrcnet.train.build import with_init_architecture
    from napari_shisrcnet.train.config import TrainConfig

    x4 = TrainConfig(scale=4, init_checkpoints=("default",))
    assert x4.init_checkpoints == ("default-x4",)
    built = with_init_architecture(x4)
    assert (built.sr_channels, built.sr_blocks) == (64, 3)
    assert (built.sr_fusion, built.classifier_width) == ("paper", 0.25)  # not 1.0/selective
    # What the user sets stays; only what is unset comes from the checkpoint.
    wider = with_init_architecture(replace(x4, classifier_width=0.5))
    assert wider.classifier_width == 0.5 and wider.sr_channels == 64
    fresh = with_init_architecture(TrainConfig())
    assert (fresh.sr_channels, fresh.sr_fusion, fresh.classifier_width) == (64, "selective", 1.0)


def test_train_init_default_fine_tunes_without_architecture_flags(tmp_path, capsys):
    from conftest import make_breakhis_tree
    from napari_shisrcnet.cli import main
    from napari_shisrcnet.model import read_checkpoint_info

    tree, out = make_breakhis_tree(tmp_path / "data"), tmp_path / "run"
    arguments = ["--scale", "4", "--init", "default", "--max-steps", "0", "--device", "cpu"]
    assert main(["train", str(tree), *arguments, "--val-crop-px", "32", "--out", str(out)]) == 0
    assert "--init default-x4: model copied" in capsys.readouterr().out
    trained = read_checkpoint_info(out / "best.safetensors").config
    assert trained["sr"]["scale"] == 4 and trained["classifier"]["width"] == 0.25
    # Resuming continues from the saved state; it does not claim the --init weights.
    assert main(["train", str(tree), *arguments, "--out", str(out), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"resuming from {out}" in printed and "model copied" not in printed


def test_bundled_models_are_listed_and_picked_by_scale(capsys):
    from napari_shisrcnet.cli import main
    from napari_shisrcnet.model.bundled import checkpoint_path, installed_models

    assert main(["info", "--models"]) == 0
    out = capsys.readouterr().out
    assert "default-x2: x2, classes benign, malignant (argmax); LR made by scanner+bicubic" in out
    assert "default-x4: x4, classes benign, malignant" in out and "0.5 µm/px" in out
    models = installed_models()
    assert checkpoint_path("default", 2) == models["default-x2"] == checkpoint_path("default")
    assert checkpoint_path("default", 4) == models["default-x4"]  # both are bundled
