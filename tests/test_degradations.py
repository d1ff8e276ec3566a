"""Degradation models: statistics of what they make, not only shapes."""

import numpy as np
import pytest
import torch
from skimage.data import immunohistochemistry

from napari_shisrcnet.data.degradations import (
    BLUR_SIGMA_PER_SCALE,
    DEGRADATIONS,
    SCANNER_JPEG_QUALITY,
    bicubic,
    degradation,
    gaussian_kernel,
    jpeg,
    random_blur,
    random_noise,
    realistic,
    scanner,
)
from napari_shisrcnet.data.pairs import PairDataset, degrade, quantize, to_tensor

HR = to_tensor(immunohistochemistry()[128:384, 128:384])  # real stained tissue, 256 px


def _rng(seed=0):
    return np.random.default_rng(seed)


def blockiness(image: torch.Tensor) -> float:
    """Mean step across 8-px block edges over the mean step inside blocks (1: none)."""
    steps = (image[..., 1:] - image[..., :-1]).abs().mean(dim=(0, 1))
    edges = torch.arange(7, steps.shape[0], 8)
    inside = torch.ones_like(steps, dtype=torch.bool)
    inside[edges] = False
    return float(steps[edges].mean() / steps[inside].mean())


def _psnr(a, b):
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize("name", DEGRADATIONS)
@pytest.mark.parametrize("scale", [2, 4])
def test_every_degradation_is_seeded_8_bit_and_the_right_size(name, scale):
    make = degradation(name)
    lr = make(HR, scale, _rng(1))
    assert lr.shape == (3, 256 // scale, 256 // scale)
    assert torch.equal(lr, make(HR, scale, _rng(1)))  # same seed, same LR
    assert torch.equal(lr, (lr * 255).round() / 255) and lr.min() >= 0 and lr.max() <= 1
    if name != "bicubic":
        assert not torch.equal(lr, make(HR, scale, _rng(2)))  # random per seed


def test_bicubic_is_the_papers_degradation():
    assert torch.equal(bicubic(HR, 2, _rng()), degrade(HR, 2))


def test_scanner_is_box_averaging_then_jpeg_at_a_slide_quality():
    box = quantize(torch.nn.functional.avg_pool2d(HR[None], 2)[0])
    lr = scanner(HR, 2, _rng())
    assert abs(float(lr.mean() - HR.mean())) < 2e-3  # box averaging keeps the mean
    low, high = SCANNER_JPEG_QUALITY
    qualities = [q for q in range(low, high + 1) if torch.equal(jpeg(box, q), lr)]
    assert qualities  # exactly JPEG of the box average, at a quality in the range
    # Aperio's Q = 30 leaves the 8 x 8 grid visible; box averaging alone does not.
    assert blockiness(jpeg(box, 30)) > 1.4 > 1.1 > blockiness(box)


def test_jpeg_quality_orders_the_error():
    assert _psnr(jpeg(HR, 95), HR) > _psnr(jpeg(HR, 60), HR) > _psnr(jpeg(HR, 30), HR)


def test_blur_kernels_have_the_widths_asked_for():
    kernel = gaussian_kernel(1.0, 3.0, 0.0, 31).double()
    offsets = torch.arange(31, dtype=torch.float64) - 15
    assert float(kernel.sum()) == pytest.approx(1.0)
    assert float((kernel.sum(1) * offsets**2).sum()) == pytest.approx(1.0, rel=1e-3)  # y
    assert float((kernel.sum(0) * offsets**2).sum()) == pytest.approx(9.0, rel=1e-3)  # x
    rotated = gaussian_kernel(1.0, 3.0, np.pi / 2, 31).double()
    assert float((rotated.sum(1) * offsets**2).sum()) == pytest.approx(9.0, rel=1e-3)


def test_blur_removes_detail_and_noise_adds_it_at_the_stated_level():
    def detail(image):
        return float((image[..., 1:, :] - image[..., :-1, :]).abs().mean())

    blurred = [random_blur(HR, 2, _rng(seed)) for seed in range(5)]
    assert all(detail(b) < detail(HR) for b in blurred)
    flat = torch.full((3, 64, 64), 0.5)
    sigmas = [float((random_noise(flat, _rng(seed)) - flat).std()) for seed in range(20)]
    assert min(sigmas) > 0.5 / 255 and max(sigmas) < 15 / 255
    means = [float(random_noise(flat, _rng(seed)).mean()) for seed in range(20)]
    assert max(abs(m - 0.5) for m in means) < 0.01  # zero-mean noise


def test_realistic_lr_is_blurrier_than_bicubic_on_average_and_keeps_colour():
    bicubic_lr = degrade(HR, 2)
    lrs = [realistic(HR, 2, _rng(seed)) for seed in range(12)]
    closer = np.mean([_psnr(lr, bicubic_lr) for lr in lrs])
    assert 20 < closer < 45  # degraded differently, but the same picture
    channel_means = torch.stack([lr.mean(dim=(1, 2)) for lr in lrs]).mean(0)
    assert torch.allclose(channel_means, bicubic_lr.mean(dim=(1, 2)), atol=0.02)


def test_training_pairs_use_the_chosen_degradation(breakhis_tree):
    from napari_shisrcnet.data.breakhis import index_dataset

    paths = [r.path for r in index_dataset(breakhis_tree, 100)][:2]
    plain = PairDataset(paths, [0, 1], 2, 32, seed=3)
    scanned = PairDataset(paths, [0, 1], 2, 32, seed=3, degradation=scanner)
    lr_plain, hr_plain, _ = plain[0]
    lr_scanned, hr_scanned, _ = scanned[0]
    assert torch.equal(hr_plain, hr_scanned)  # same crop and augmentation
    assert torch.equal(lr_plain, degrade(hr_plain, 2))
    assert not torch.equal(lr_scanned, lr_plain)


def test_an_unknown_degradation_names_the_choices():
    with pytest.raises(ValueError, match="bicubic, scanner, realistic"):
        degradation("gaussian")
    with pytest.raises(ValueError, match="joined by"):
        degradation("scanner+scanner")


def test_a_mixture_makes_each_pair_with_one_of_its_parts():
    mixture = degradation("scanner+bicubic")
    made = [mixture(HR, 2, _rng(seed)) for seed in range(16)]
    plain = degrade(HR, 2)
    bicubic_made = [torch.equal(lr, plain) for lr in made]
    assert 3 <= sum(bicubic_made) <= 13  # both parts are used
    for seed, lr in enumerate(made):  # and a non-bicubic one is exactly the scanner's
        if not bicubic_made[seed]:
            rng = _rng(seed)
            rng.integers(2)  # the mixture's choice
            assert torch.equal(lr, scanner(HR, 2, rng))


def test_training_records_its_degradation_in_the_checkpoint(tmp_path, breakhis_tree, capsys):
    from napari_shisrcnet.cli import main
    from napari_shisrcnet.model import load_checkpoint
    from test_training import TINY_CLI

    common = ["--max-steps", "1", "--epochs", "1", "--magnification", "100", *TINY_CLI]
    args = ["train", str(breakhis_tree), "--out", str(tmp_path), *common]
    assert main([*args, "--degradation", "realistic"]) == 0
    _, info = load_checkpoint(tmp_path / "best.safetensors")
    assert info.provenance["train_config"]["degradation"] == "realistic"
    bad = ["train", str(breakhis_tree), "--out", str(tmp_path / "x"), *common]
    assert main([*bad, "--degradation", "blurry"]) == 2
    assert "degradation must be one of bicubic, scanner, realistic or a mixture" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()


def test_the_separable_isotropic_blur_equals_the_2d_kernel():
    for seed in range(40):
        rng = np.random.default_rng(seed)
        low, high = BLUR_SIGMA_PER_SCALE  # at x2
        sigma_y = rng.uniform(low, high)
        if rng.random() < 0.5:  # the isotropic draws
            kernel = gaussian_kernel(sigma_y, sigma_y, 0.0, 2 * int(3 * high) + 1)
            pad = kernel.shape[0] // 2
            padded = torch.nn.functional.pad(HR[:, None], (pad,) * 4, mode="reflect")
            expected = torch.nn.functional.conv2d(padded, kernel[None, None])[:, 0]
            blurred = random_blur(HR, 2, np.random.default_rng(seed))
            assert torch.allclose(blurred, expected, atol=1e-5)
