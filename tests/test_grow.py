"""A trained SR module starts a wider one that computes the same function, or a deeper one
that computes nearly the same."""

import pytest
import torch

from napari_shisrcnet.model import SHISRCNet, SRMFENet, save_checkpoint
from napari_shisrcnet.train.build import initialise_from
from napari_shisrcnet.train.grow import NEW_BLOCK_WEIGHT_SCALE, can_grow, grow_into


def trained_like(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere (a fresh net's last conv is scaled near zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return module


@pytest.mark.parametrize(("scale", "fusion"), [(2, "paper"), (4, "paper"), (2, "mean")])
def test_the_widened_module_computes_what_the_narrow_one_did(scale, fusion):
    torch.manual_seed(0)
    narrow = trained_like(SRMFENet(scale=scale, channels=6, n_blocks=2, fusion=fusion), 1)
    wide = SRMFENet(narrow.config, channels=16)
    grow_into(narrow, wide)
    lr = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(2))
    narrow.train(), wide.train()  # unclamped, so a difference cannot hide at 0 or 1
    torch.testing.assert_close(wide(lr), narrow(lr), rtol=0, atol=1e-5)
    # ... and the new channels are alive: their activations are not zero, so the zero
    # weights that keep them out of the old channels learn from the first step.
    wide(lr).square().mean().backward()
    last = wide.tail[-1].weight
    assert last.grad[:, 6:].abs().sum() > 0 and torch.all(last[:, 6:] == 0)
    assert wide.head.weight[6:].abs().sum() > 0  # fresh incoming weights, not zeros


@pytest.mark.parametrize("fusion", ["paper", "mean"])
def test_the_deepened_module_starts_close_to_the_shallow_one_and_its_new_blocks_learn(fusion):
    torch.manual_seed(0)
    shallow = trained_like(SRMFENet(scale=2, channels=8, n_blocks=2, fusion=fusion), 1)
    deep = SRMFENet(shallow.config, n_blocks=4, channels=12)  # deeper and wider at once
    grow_into(shallow, deep)
    lr = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(2))
    shallow.train(), deep.train()
    torch.testing.assert_close(
        deep.blocks[1].atrous_convs[0].weight[:8, :8], shallow.blocks[1].atrous_convs[0].weight
    )
    moved = (deep(lr) - shallow(lr)).abs()
    spread = shallow(lr).std()
    # Close, not equal: the new blocks' weights are small but not zero (grow.py). At
    # NEW_BLOCK_WEIGHT_SCALE 0.1 the largest change is 0.13 of the output's spread; new
    # blocks at full (PyTorch-default) size move it by 2.0.
    assert NEW_BLOCK_WEIGHT_SCALE == 0.1
    assert 0 < moved.max() < 0.2 * spread
    deep(lr).square().mean().backward()
    for block in deep.blocks[2:]:
        for conv in block.atrous_convs:
            assert conv.weight.grad.abs().sum() > 0  # alive: ReLU passes gradient


def test_only_channels_and_blocks_may_grow_and_only_with_a_per_channel_fusion():
    narrow = SRMFENet(scale=2, channels=6, n_blocks=2)
    assert can_grow(narrow, SRMFENet(narrow.config, channels=8))
    assert can_grow(narrow, SRMFENet(narrow.config, n_blocks=3))
    assert can_grow(narrow, SRMFENet(narrow.config, channels=8, n_blocks=3))
    assert not can_grow(narrow, narrow)  # nothing grows: a plain copy, not this
    assert not can_grow(narrow, SRMFENet(narrow.config, channels=4))  # narrower
    assert not can_grow(narrow, SRMFENet(narrow.config, channels=8, n_blocks=1))  # shallower
    assert not can_grow(narrow, SRMFENet(narrow.config, channels=8, scale=4))
    assert not can_grow(narrow, SRMFENet(narrow.config, dilation_rates=(1, 2)))
    selective = SRMFENet(narrow.config, channels=8, fusion="selective")
    assert not can_grow(SRMFENet(selective.config, channels=6), selective)  # mixes channels
    with pytest.raises(ValueError, match="only the channel count"):
        grow_into(narrow, selective)


def test_init_from_a_narrower_checkpoint_widens_it_and_refuses_what_cannot_be(tmp_path):
    torch.manual_seed(0)
    narrow = trained_like(SHISRCNet(channels=6, n_blocks=1, width=0.125, fpn_channels=64), 3)
    path = save_checkpoint(narrow, tmp_path / "narrow-joint.safetensors")
    wide = SRMFENet(narrow.sr_module.config, channels=12)
    done = initialise_from(wide, str(path))  # the joint model's SR module, widened
    assert done == "SR module grown from 6 channels x 1 blocks to 12 x 1 (train/grow.py)"
    lr = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(wide.train()(lr), narrow.sr_module.train()(lr), atol=1e-5, rtol=0)
    selective = SRMFENet(narrow.sr_module.config, channels=12, fusion="selective")
    before = {name: value.clone() for name, value in selective.state_dict().items()}
    with pytest.raises(ValueError, match="config differs from the one being trained"):
        initialise_from(selective, str(path))
    for name, value in selective.state_dict().items():
        assert torch.equal(value, before[name]), name  # refused before anything was copied


def test_the_bundled_x2_model_grown_to_six_blocks_moves_by_about_a_hundredth():
    from skimage.data import immunohistochemistry

    from napari_shisrcnet.model import load_checkpoint
    from napari_shisrcnet.model.bundled import checkpoint_path

    model, _ = load_checkpoint(checkpoint_path("default"))
    shallow = model.sr_module.float().train()  # unclamped
    torch.manual_seed(0)
    deep = SRMFENet(shallow.config, n_blocks=6).train()
    grow_into(shallow, deep)
    image = immunohistochemistry()[:64, :64]  # real stained tissue, 8-bit
    lr = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    with torch.no_grad():
        moved = (deep(lr) - shallow(lr)).abs()
    assert 0 < moved.max() < 0.015  # measured: 0.0092
    assert moved.square().mean().sqrt() < 0.003  # measured: 0.0019 (docs/training.md)
