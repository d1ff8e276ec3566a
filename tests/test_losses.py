import math

import pytest
import torch
from torch.nn import functional as F

from napari_shisrcnet.model import (
    LossConfig,
    SHISRCNet,
    SHISRCNetLoss,
    focal_loss,
    nt_xent_loss,
)


def test_focal_loss_equals_cross_entropy_at_gamma_zero():
    torch.manual_seed(0)
    logits, targets = torch.randn(16, 8), torch.randint(0, 8, (16,))
    torch.testing.assert_close(
        focal_loss(logits, targets, gamma=0.0), F.cross_entropy(logits, targets)
    )


def test_focal_loss_by_hand_with_alpha():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([0, 0])
    alpha = torch.tensor([0.25, 0.75])
    p0 = math.exp(2) / (math.exp(2) + 1)  # sample 1, true class 0
    p1 = 1 / (1 + math.e)  # sample 2, true class 0
    expected = 0.25 * (-((1 - p0) ** 2) * math.log(p0) - (1 - p1) ** 2 * math.log(p1)) / 2
    assert focal_loss(logits, targets, gamma=2.0, alpha=alpha).item() == pytest.approx(expected)


def test_nt_xent_by_hand_on_two_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 1.0], [1.0, -1.0]])  # normalised to (1, 1)/sqrt2, (1, -1)/sqrt2
    s = (1 / math.sqrt(2)) / 0.5  # cosine 1/sqrt2 over temperature 0.5
    # Order: a1, a2, b1, b2; positives a1-b1 and a2-b2; each anchor sees the 3 others.
    terms = [
        -math.log(math.exp(s) / (math.exp(0) + math.exp(s) + math.exp(s))),  # a1: a2, b1, b2
        -math.log(math.exp(-s) / (math.exp(0) + math.exp(s) + math.exp(-s))),  # a2: a1, b1, b2
        -math.log(math.exp(s) / (math.exp(s) + math.exp(s) + math.exp(0))),  # b1: a1, a2, b2
        -math.log(math.exp(-s) / (math.exp(s) + math.exp(-s) + math.exp(0))),  # b2: a1, a2, b1
    ]
    assert nt_xent_loss(a, b, temperature=0.5).item() == pytest.approx(sum(terms) / 4, rel=1e-6)


def test_nt_xent_is_lower_for_matched_than_for_shuffled_pairs():
    torch.manual_seed(0)
    sr_features = torch.randn(32, 64)
    hr_features = sr_features + 0.3 * torch.randn(32, 64)
    shuffled = hr_features[torch.roll(torch.arange(32), 1)]
    matched_loss = nt_xent_loss(sr_features, hr_features)
    assert matched_loss < nt_xent_loss(sr_features, shuffled) - 1.0


def test_nt_xent_ignores_feature_scale():
    torch.manual_seed(0)
    a, b = torch.randn(8, 16), torch.randn(8, 16)
    torch.testing.assert_close(nt_xent_loss(a, b), nt_xent_loss(10 * a, 0.1 * b))


def test_joint_loss_is_the_weighted_sum_of_its_parts():
    torch.manual_seed(0)
    model = SHISRCNet(scale=2, channels=8, n_blocks=1, width=0.125, fpn_channels=64).train()
    lr, hr = torch.rand(4, 3, 20, 20), torch.rand(4, 3, 40, 40)
    targets = torch.tensor([0, 1, 1, 0])
    out = model(lr, hr)
    parts = SHISRCNetLoss(LossConfig())(out, hr, targets)
    torch.testing.assert_close(parts.l1, F.l1_loss(out.sr, hr))
    focal = (focal_loss(out.logits_sr, targets) + focal_loss(out.logits_hr, targets)) / 2
    torch.testing.assert_close(parts.focal, focal)
    torch.testing.assert_close(parts.ntxent, nt_xent_loss(out.features_sr, out.features_hr, 0.5))
    torch.testing.assert_close(parts.total, 0.6 * parts.l1 + 0.3 * parts.focal + 0.1 * parts.ntxent)


def test_joint_loss_needs_the_hr_branch():
    model = SHISRCNet(scale=2, channels=8, n_blocks=1, width=0.125, fpn_channels=64).eval()
    lr = torch.rand(2, 3, 20, 20)
    with pytest.raises(ValueError, match="needs the HR branch"):
        SHISRCNetLoss()(model(lr), torch.rand(2, 3, 40, 40), torch.tensor([0, 1]))
