"""MFE branch fusion: the paper's MSF cannot select; the learned selective fusion can."""

import math

import pytest
import torch

from napari_shisrcnet.model import SRMFENet, load_checkpoint, save_checkpoint
from napari_shisrcnet.model.checkpoint import CheckpointError
from napari_shisrcnet.model.srmfenet import (
    MeanFusion,
    MultiScaleSelectiveFusion,
    SelectiveFusion,
)


def _relu_branches(seed=0, shape=(3, 4, 16, 9, 11)):
    torch.manual_seed(seed)
    return torch.relu(torch.randn(shape) * 5)  # MFE branches are ReLU outputs: >= 0


def test_the_papers_msf_is_pinned_near_a_plain_mean_for_relu_branches():
    weights = MultiScaleSelectiveFusion().branch_weights(_relu_branches())
    # Pooled means >= 0 -> sigmoid in [0.5, 1) -> softmax over 4 branches in these bounds.
    low = math.exp(0.5) / (math.exp(0.5) + 3 * math.e)
    high = math.e / (math.e + 3 * math.exp(0.5))
    assert low - 1e-6 <= weights.min() and weights.max() <= high + 1e-6
    assert (low, high) == pytest.approx((0.168, 0.355), abs=1e-3)


def test_selective_fusion_sums_to_one_and_can_select_one_branch():
    fusion = SelectiveFusion(channels=16, n_branches=4)
    branches = _relu_branches()
    weights = fusion.branch_weights(branches)
    assert weights.shape == (3, 4, 16, 1, 1)
    torch.testing.assert_close(weights.sum(1), torch.ones(3, 16, 1, 1))
    with torch.no_grad():  # logits favouring branch 2 for every channel
        fusion.select.weight.zero_()
        fusion.select.bias.copy_(torch.tensor([0.0, 0.0, 12.0, 0.0]).repeat_interleave(16))
    selected = fusion.branch_weights(branches)
    assert selected[:, 2].min() > 0.99
    torch.testing.assert_close(fusion(branches), branches[:, 2], atol=1e-3, rtol=1e-3)


def test_mean_fusion_is_the_mean():
    branches = _relu_branches()
    torch.testing.assert_close(MeanFusion()(branches), branches.mean(1))


@pytest.mark.parametrize("fusion", ["paper", "selective", "mean"])
def test_each_fusion_trains_and_round_trips_through_a_checkpoint(tmp_path, fusion):
    model = SRMFENet(channels=8, n_blocks=1, fusion=fusion)
    lr = torch.rand(2, 3, 12, 12)
    loss = (model(lr) - torch.rand(2, 3, 24, 24)).abs().mean()
    loss.backward()  # every fusion is differentiable end to end
    loaded, info = load_checkpoint(save_checkpoint(model, tmp_path / f"{fusion}.safetensors"))
    assert loaded.config.fusion == fusion and info.architecture == "SRMFENet"
    torch.testing.assert_close(loaded.eval()(lr), model.eval()(lr))


def test_an_unknown_fusion_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fusion must be one of"):
        SRMFENet(channels=8, n_blocks=1, fusion="attention")
    path = save_checkpoint(SRMFENet(channels=8, n_blocks=1), tmp_path / "m.safetensors")
    data = path.read_bytes()
    assert data.count(b"paper") == 1  # the fusion setting in the JSON header
    path.write_bytes(data.replace(b"paper", b"poppy"))  # same length: the header still fits
    with pytest.raises(CheckpointError, match="fusion"):
        load_checkpoint(path)


def test_training_defaults_to_selective_but_fine_tunes_a_checkpoint_as_built(tmp_path):
    from napari_shisrcnet.train.build import build_model, with_init_architecture
    from napari_shisrcnet.train.config import TrainConfig

    small = dict(sr_channels=8, sr_blocks=1, classifier_width=0.125)
    fresh = build_model(with_init_architecture(TrainConfig(**small)), 2)
    assert fresh.sr_module.config.fusion == "selective"
    paper = save_checkpoint(SRMFENet(channels=8, n_blocks=1), tmp_path / "paper.safetensors")
    tuned = with_init_architecture(TrainConfig(stage="sr", init_checkpoints=(str(paper),), **small))
    assert tuned.sr_fusion == "paper"  # the bundled model (and older checkpoints) too
    assert with_init_architecture(TrainConfig(init_checkpoints=("default",))).sr_fusion == "paper"
    assert TrainConfig.from_dict({"sr_channels": 8}).sr_fusion == "paper"  # recorded before
