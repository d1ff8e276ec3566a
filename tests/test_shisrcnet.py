import pytest
import torch

from napari_shisrcnet.model import LossConfig, SHISRCNet, SHISRCNetLoss

TINY = dict(channels=8, n_blocks=1, width=0.125, fpn_channels=64)


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("num_classes", [2, 8])
def test_inference_returns_sr_logits_and_features(scale, num_classes):
    model = SHISRCNet(scale=scale, num_classes=num_classes, **TINY).eval()
    out = model(torch.rand(2, 3, 40 // scale * 2, 36 // scale * 2))
    assert out.sr.shape == (2, 3, 40 // scale * 2 * scale, 36 // scale * 2 * scale)
    assert out.logits_sr.shape == (2, num_classes)
    assert out.features_sr.shape == (2, model.classifier.feature_dim)
    assert out.logits_hr is None and out.features_hr is None


def test_training_forward_runs_both_branches():
    model = SHISRCNet(scale=4, **TINY).train()
    lr, hr = torch.rand(3, 3, 12, 12), torch.rand(3, 3, 48, 48)
    out = model(lr, hr)
    assert out.logits_hr.shape == out.logits_sr.shape == (3, 2)
    assert out.features_hr.shape == out.features_sr.shape
    # The HR branch really sees HR: swapping in another HR changes only the HR branch.
    other = model.eval()(lr, torch.zeros_like(hr))
    reference = model(lr, hr)
    torch.testing.assert_close(other.logits_sr, reference.logits_sr)
    assert not torch.allclose(other.logits_hr, reference.logits_hr)


def test_mismatched_hr_is_refused():
    model = SHISRCNet(scale=2, **TINY)
    with pytest.raises(ValueError, match="HR shape"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match="unknown SHISRCNet option"):
        SHISRCNet(scales=4)


@pytest.mark.parametrize("projection_dim", [None, 16])
def test_gradients_reach_every_parameter(projection_dim):
    torch.manual_seed(0)
    model = SHISRCNet(scale=2, projection_dim=projection_dim, **TINY).train()
    loss_fn = SHISRCNetLoss(LossConfig())
    lr, hr = torch.rand(4, 3, 24, 24), torch.rand(4, 3, 48, 48)
    loss_fn(model(lr, hr), hr, torch.tensor([0, 1, 0, 1])).total.backward()
    without_gradient = [
        name
        for name, p in model.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert without_gradient == []
