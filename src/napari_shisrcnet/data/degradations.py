"""How LR training images are made from HR: three degradation models, seeded.

- ``bicubic``: the paper's. Antialiased bicubic downsampling, 8-bit (``pairs.degrade``).
- ``scanner``: what a slide pyramid does to its own level 0. Box (area) averaging by the
  scale, as pyramid levels are built (libvips, OpenSlide-era scanners, our own writer),
  then JPEG at a random quality in ``SCANNER_JPEG_QUALITY``: Aperio writes Q = 30-70
  (the bundled CMU-1 scan: Q = 30), other vendors up to ~90.
- ``realistic``: a random first-order mix after Real-ESRGAN (Wang et al., ICCVW 2021) and
  BSRGAN (Zhang et al., ICCV 2021), in their order: isotropic or anisotropic Gaussian blur,
  a resize by 1/scale with a random kernel (area, bilinear, bicubic), Gaussian or Poisson
  noise, JPEG at a random quality, and a small per-channel colour gain (scanner white
  balance). Ranges are Real-ESRGAN's, the blur widths scaled by the factor.

Names joined by ``+`` (``scanner+bicubic``) are a mixture: each pair is made by one of
them, chosen uniformly by the same seeded generator.

Every function takes a (3, H, W) float tensor in [0, 1] and a numpy Generator and returns
the 8-bit-quantised LR tensor; the same generator state gives the same LR.
"""

from __future__ import annotations

from collections.abc import Callable

import imagecodecs
import numpy as np
import torch
from torch.nn import functional as F

from .pairs import degrade, quantize

DEGRADATIONS = ("bicubic", "scanner", "realistic")
SCANNER_JPEG_QUALITY = (30, 90)
REALISTIC_JPEG_QUALITY = (30, 95)
# Blur sigma range in HR px at x2, scaled by scale / 2 (x4: 0.2-3.0, Real-ESRGAN's).
BLUR_SIGMA_PER_SCALE = (0.1, 1.5)
GAUSSIAN_NOISE_SIGMA = (1 / 255, 10 / 255)
# Poisson: 255 x 10^(2u) photons per unit intensity, u in this range: at mid-grey a noise
# sigma of ~10.7/255 down to ~1.1/255, the Gaussian range.
POISSON_EXPONENT = (0.05, 1.0)
COLOUR_GAIN = 0.02  # at most +-2 % per channel

Degradation = Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode (3, H, W) in [0, 1] as 8-bit JPEG (libjpeg via imagecodecs, the
    codec tifffile reads slide tiles with; 4:2:0 chroma, as most scanners)."""
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
    decoded = imagecodecs.jpeg_decode(imagecodecs.jpeg_encode(pixels, level=int(quality)))
    return torch.from_numpy(np.ascontiguousarray(decoded)).permute(2, 0, 1).float() / 255


def bicubic(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    return degrade(hr, scale)


def scanner(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    lr = quantize(F.avg_pool2d(hr[None], scale)[0])
    return jpeg(lr, int(rng.integers(SCANNER_JPEG_QUALITY[0], SCANNER_JPEG_QUALITY[1] + 1)))


def gaussian_kernel(sigma_y: float, sigma_x: float, angle: float, size: int) -> torch.Tensor:
    """A normalised 2D Gaussian with principal widths ``sigma_y``, ``sigma_x`` rotated by
    ``angle`` (radians); ``size`` odd."""
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    covariance = rotation @ np.diag([sigma_y**2, sigma_x**2]) @ rotation.T
    offsets = np.arange(size) - size // 2
    grid = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), -1)
    exponent = np.einsum("...i,ij,...j->...", grid, np.linalg.inv(covariance), grid)
    kernel = np.exp(-0.5 * exponent)
    return torch.from_numpy(kernel / kernel.sum()).float()


def random_blur(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    low, high = (s * scale / 2 for s in BLUR_SIGMA_PER_SCALE)
    sigma_y = rng.uniform(low, high)
    isotropic = rng.random() < 0.5
    sigma_x = sigma_y if isotropic else rng.uniform(low, high)
    angle = rng.uniform(0, np.pi)
    size = 2 * int(3 * high) + 1
    pad = size // 2
    padded = F.pad(hr[:, None], (pad, pad, pad, pad), mode="reflect")
    if isotropic:  # separable: two 1D passes, size / 2 times fewer operations than one 2D
        offsets = torch.arange(size, dtype=torch.float32) - pad
        line = torch.exp(-0.5 * (offsets / sigma_y) ** 2)
        line = line / line.sum()
        rows = F.conv2d(padded, line[None, None, :, None])
        return F.conv2d(rows, line[None, None, None, :])[:, 0]
    kernel = gaussian_kernel(sigma_y, sigma_x, angle, size)
    return F.conv2d(padded, kernel[None, None])[:, 0]


def random_noise(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    grey = rng.random() < 0.4  # Real-ESRGAN: grey (luminance-only) noise 40 % of the time
    shape = (1, *image.shape[1:]) if grey else image.shape
    if rng.random() < 0.5:
        sigma = rng.uniform(*GAUSSIAN_NOISE_SIGMA)
        return image + sigma * torch.randn(shape, generator=generator)
    counts = 255 * 10 ** (2 * rng.uniform(*POISSON_EXPONENT))
    source = image.mean(0, keepdim=True) if grey else image
    noisy = torch.poisson(source.clamp(0, 1) * counts, generator=generator) / counts
    return image + (noisy - source)


def realistic(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    image = random_blur(hr, scale, rng)
    mode = ("area", "bilinear", "bicubic")[int(rng.integers(3))]
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    extra = {} if mode == "area" else {"align_corners": False, "antialias": True}
    image = F.interpolate(image[None], size=size, mode=mode, **extra)[0]
    image = random_noise(image, rng)
    image = jpeg(image, int(rng.integers(REALISTIC_JPEG_QUALITY[0], REALISTIC_JPEG_QUALITY[1] + 1)))
    gain = 1 + torch.from_numpy(rng.uniform(-COLOUR_GAIN, COLOUR_GAIN, 3)).float()
    return quantize(image * gain[:, None, None])


DEGRADATION_FUNCTIONS: dict[str, Degradation] = {
    "bicubic": bicubic,
    "scanner": scanner,
    "realistic": realistic,
}


def degradation(name: str) -> Degradation:
    """The degradation called ``name``, or the uniform mixture of ``a+b``."""
    parts = name.split("+")
    unknown = [part for part in parts if part not in DEGRADATION_FUNCTIONS]
    if unknown or len(set(parts)) != len(parts):
        raise ValueError(
            f"unknown degradation '{name}'; choose one of {', '.join(DEGRADATIONS)}, or "
            "several joined by '+' (a mixture)"
        )
    if len(parts) == 1:
        return DEGRADATION_FUNCTIONS[name]
    functions = [DEGRADATION_FUNCTIONS[part] for part in parts]

    def mixture(hr: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
        return functions[int(rng.integers(len(functions)))](hr, scale, rng)

    return mixture


def is_degradation(name: str) -> bool:
    try:
        degradation(name)
    except ValueError:
        return False
    return True
