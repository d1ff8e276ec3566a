import pytest
import torch
from torch.nn import functional as F

from napari_shisrcnet.model import (
    BicubicSR,
    MFEBlock,
    MultiScaleSelectiveFusion,
    SRMFENet,
    SRMFENetConfig,
)

TINY = dict(channels=8, n_blocks=1)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_shape_for_every_scale(scale):
    model = SRMFENet(scale=scale, **TINY).eval()
    lr = torch.rand(2, 3, 13, 17)  # odd sizes: nothing assumes multiples of anything
    assert model(lr).shape == (2, 3, 13 * scale, 17 * scale)


@pytest.mark.parametrize(("scale", "expected"), [(2, 668_227), (4, 815_939), (8, 963_651)])
def test_default_parameter_counts(scale, expected):
    # The numbers written in docs/model.md; x2 must sit in the paper's 0.6-0.9 M range.
    count = sum(p.numel() for p in SRMFENet(scale=scale).parameters())
    assert count == expected
    if scale == 2:
        assert 600_000 <= count <= 900_000


def test_unsupported_scale_is_refused():
    with pytest.raises(ValueError, match="scale must be one of"):
        SRMFENet(scale=3)


def test_msf_weights_sum_to_one_and_fuse_as_the_paper_states():
    torch.manual_seed(0)
    branches = torch.randn(2, 4, 5, 6, 7)
    fusion = MultiScaleSelectiveFusion()
    weights = fusion.branch_weights(branches)
    assert weights.shape == (2, 4, 5, 1, 1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 5, 1, 1))
    # By hand: GAP -> sigmoid -> softmax across the four branches, per channel.
    gap = branches.mean(dim=(3, 4))
    scores = torch.exp(torch.sigmoid(gap))
    expected_weights = scores / scores.sum(dim=1, keepdim=True)
    expected = (expected_weights[..., None, None] * branches).sum(dim=1)
    torch.testing.assert_close(fusion(branches), expected)


def test_mfe_block_cascades_atrous_convs_with_rates_1_2_4_8():
    torch.manual_seed(0)
    block = MFEBlock(channels=4)
    assert [conv.dilation[0] for conv in block.atrous_convs] == [1, 2, 4, 8]
    x = torch.randn(1, 4, 20, 20)
    convs = block.atrous_convs
    y1 = torch.relu(convs[0](x))
    y2 = torch.relu(convs[1](x + y1))
    y3 = torch.relu(convs[2](x + y2))
    y4 = torch.relu(convs[3](x + y3))
    branches = torch.stack([y1, y2, y3, y4], dim=1)
    torch.testing.assert_close(block.branch_outputs(x), branches)
    torch.testing.assert_close(block(x), x + block.fusion(branches))


def test_bicubic_residual_makes_an_untrained_tail_start_at_bicubic():
    lr = torch.rand(1, 3, 10, 12)
    with_residual = SRMFENet(scale=2, **TINY).eval()
    without = SRMFENet(SRMFENetConfig(scale=2, bicubic_residual=False, **TINY)).eval()
    for model in (with_residual, without):
        torch.nn.init.zeros_(model.tail[-1].weight)
        torch.nn.init.zeros_(model.tail[-1].bias)
    bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(with_residual(lr), bicubic.clamp(0, 1))
    assert torch.count_nonzero(without(lr)) == 0


def test_output_is_clamped_at_inference_only():
    model = SRMFENet(scale=2, **TINY)
    with torch.no_grad():
        model.tail[-1].bias.fill_(5.0)  # push every output above 1
    lr = torch.rand(1, 3, 8, 8)
    assert model.train()(lr).max() > 1.0
    out = model.eval()(lr)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_bicubic_baseline_has_the_sr_interface_and_no_weights():
    lr = torch.rand(2, 3, 9, 11)
    baseline = BicubicSR(scale=4)
    assert baseline.scale == 4
    assert sum(p.numel() for p in baseline.parameters()) == 0
    expected = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(baseline(lr), expected)
