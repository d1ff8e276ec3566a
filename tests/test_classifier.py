import pytest
import torch

from napari_shisrcnet.model import (
    MIN_INPUT_SIDE_PX,
    ClassifierConfig,
    CSFBlock,
    SKConv,
    SKNetFPNClassifier,
)

TINY = dict(width=0.125, fpn_channels=64)


@pytest.mark.parametrize("num_classes", [2, 8])
@pytest.mark.parametrize("side", [MIN_INPUT_SIDE_PX, 45, 100])
def test_logits_and_features_for_any_side_above_the_minimum(num_classes, side):
    model = SKNetFPNClassifier(num_classes=num_classes, **TINY).eval()
    logits, features = model(torch.rand(2, 3, side, side + 13))
    assert logits.shape == (2, num_classes)
    assert features.shape == (2, model.feature_dim)
    assert model.feature_dim == 3 * 8  # three levels of 64 * 0.125 channels


def test_too_small_input_gets_a_clear_error():
    model = SKNetFPNClassifier(**TINY)
    with pytest.raises(ValueError, match=r"each side must be >= 32 px"):
        model(torch.rand(1, 3, 31, 64))


def test_fpn_is_built_on_real_backbone_stages():
    model = SKNetFPNClassifier(**TINY).eval()
    levels = model.pyramid(torch.rand(1, 3, 128, 96))
    # Strides 8, 16, 32 of the input: the backbone's last three stages, not pooled copies.
    assert [tuple(level.shape[-2:]) for level in levels] == [(16, 12), (8, 6), (4, 3)]
    assert len(model.backbone.stages) == 4
    assert [len(stage) for stage in model.backbone.stages] == [2, 2, 2, 2]  # SKNet-26


def test_csf_weights_sum_to_one_and_fuse_as_the_paper_states():
    torch.manual_seed(0)
    block = CSFBlock(channels=16, reduction=4, min_attention_dim=4)
    fine = torch.randn(3, 16, 10, 9)
    coarse = torch.randn(3, 16, 5, 5)
    coarse_up = block.upsample_to(coarse, fine)
    assert coarse_up.shape == fine.shape
    a, b = block.attention(fine, coarse_up)
    torch.testing.assert_close(a + b, torch.ones_like(a))
    # By hand: U = Xh + Up(Xl); S = GAP(U); Z = ReLU(Wc S); softmax over (Wa Z, Wb Z).
    z = torch.relu(block.compact[0]((fine + coarse_up).mean(dim=(2, 3))))
    ea, eb = torch.exp(block.weight_fine(z)), torch.exp(block.weight_coarse(z))
    a_by_hand, b_by_hand = (ea / (ea + eb))[..., None, None], (eb / (ea + eb))[..., None, None]
    expected = a_by_hand * fine + b_by_hand * coarse_up
    torch.testing.assert_close(block(fine, coarse), expected)


def test_sk_conv_selection_weights_sum_to_one():
    sk = SKConv(channels=32, branches=3, groups=8)
    branches = torch.stack([conv(torch.rand(2, 32, 8, 8)) for conv in sk.branch_convs], dim=1)
    weights = sk.branch_weights(branches)
    assert weights.shape == (2, 3, 32, 1, 1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 32, 1, 1))


def test_full_width_is_the_standard_sknet26():
    config = ClassifierConfig()
    assert (config.sk_branches, config.sk_groups, config.sk_reduction) == (2, 32, 16)
    model = SKNetFPNClassifier(config)
    assert model.backbone.stage_channels == [256, 512, 1024, 2048]
