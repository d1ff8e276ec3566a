"""Tiled-vs-whole error of SRMFENet on real 700x460 BreaKHis images; prints JSON.

MSF pools over the whole tile, so a tile's output depends on the tile. This measures,
for several tile sizes and halos, how far tiled SR is from whole-image SR of the same
LR image (reference: whole image with 64 px of reflected context), in 8-bit levels,
and how visible tile seams are (mean error on seam lines / elsewhere).

    python benchmarks/tiling_error.py --data ../shared/data/breakhis [--checkpoint X]

Without a checkpoint, a x2 SRMFENet (64 ch, bicubic residual) is first trained for
--train-steps on random HR crops, so the weights behave like trained ones.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from napari_shisrcnet.engine.inference import TileModel
from napari_shisrcnet.engine.super_resolution import array_core_writer, super_resolve_region
from napari_shisrcnet.geometry import Region
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.model import SRMFENet, load_checkpoint

REFERENCE_CONTEXT_PX = 64


def load_images(root: Path, limit: int) -> list[np.ndarray]:
    paths = sorted(root.rglob("*.png"))[:: max(1, len(list(root.rglob("*.png"))) // limit)][:limit]
    return [np.asarray(open_slide(p).levels[0]) for p in paths]


def downsample(hr: np.ndarray, scale: int) -> np.ndarray:
    tensor = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
    lr = F.interpolate(tensor, scale_factor=1 / scale, mode="bicubic", antialias=True)
    return (lr.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def quick_train(images: list[np.ndarray], steps: int, seed: int = 0) -> SRMFENet:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SRMFENet(scale=2).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        crops = []
        for _ in range(8):
            hr = images[rng.integers(len(images))]
            y, x = rng.integers(0, hr.shape[0] - 96), rng.integers(0, hr.shape[1] - 96)
            crops.append(hr[y : y + 96, x : x + 96])
        hr = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
        lr = F.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True).clamp(0, 1)
        loss = F.l1_loss(model(lr), hr)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def whole(tile_model: TileModel, lr: np.ndarray) -> np.ndarray:
    pad = REFERENCE_CONTEXT_PX
    padded = np.pad(lr, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = tile_model.super_resolve(padded[None])[0]
    s = tile_model.scale
    return out[pad * s : (pad + lr.shape[0]) * s, pad * s : (pad + lr.shape[1]) * s]


def tiled(tile_model: TileModel, lr: np.ndarray, tile_px: int, halo_px: int) -> np.ndarray:
    region = Region.whole(lr.shape[:2])
    s = tile_model.scale
    out = np.zeros((lr.shape[0] * s, lr.shape[1] * s, 3), np.uint8)
    super_resolve_region(
        lr,
        region,
        tile_model,
        array_core_writer(out, region, s),
        tile_px=tile_px,
        halo_px=halo_px,
        batch_size=4,
    )
    return out


def seam_mask(shape, tile_px: int, scale: int) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    step = tile_px * scale
    for edge in range(step, shape[0], step):
        mask[edge - 2 : edge + 2] = True
    for edge in range(step, shape[1], step):
        mask[:, edge - 2 : edge + 2] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/breakhis"))
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--tiles", default="64,128")
    parser.add_argument("--halos", default="0,8,16,32,48")
    args = parser.parse_args()
    images = load_images(args.data, 40)
    started = time.perf_counter()
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint)
        model = getattr(model, "sr_module", model)
        origin = str(args.checkpoint)
    else:
        model = quick_train(images, args.train_steps)
        origin = f"SRMFENet x2 64 ch trained {args.train_steps} steps (8 x 96 px HR crops, L1)"
    train_s = time.perf_counter() - started
    tile_model = TileModel(model, "cpu")
    test_images = images[:: max(1, len(images) // args.images)][: args.images]
    lrs = [downsample(hr, 2) for hr in test_images]
    references = [whole(tile_model, lr) for lr in lrs]
    psnr_gain = []
    for hr, ref in zip(test_images, references, strict=True):
        h, w = ref.shape[:2]
        bicubic = (
            F.interpolate(
                torch.from_numpy(downsample(hr, 2)).permute(2, 0, 1)[None].float(),
                scale_factor=2,
                mode="bicubic",
            )
            .clamp(0, 255)[0]
            .permute(1, 2, 0)
            .numpy()
        )
        target = hr[:h, :w].astype(np.float64)
        mse_sr = np.mean((ref.astype(np.float64) - target) ** 2)
        mse_bicubic = np.mean((np.round(bicubic[:h, :w]) - target) ** 2)
        psnr_gain.append(10 * np.log10(mse_bicubic / mse_sr))
    rows = []
    for tile_px in map(int, args.tiles.split(",")):
        for halo_px in map(int, args.halos.split(",")):
            errors, seam, interior = [], [], []
            for lr, ref in zip(lrs, references, strict=True):
                diff = np.abs(tiled(tile_model, lr, tile_px, halo_px).astype(int) - ref.astype(int))
                mask = seam_mask(diff.shape, tile_px, 2)
                errors.append(diff)
                seam.append(diff[mask].mean())
                interior.append(diff[~mask].mean())
            flat = np.concatenate([e.ravel() for e in errors])
            rows.append(
                {
                    "tile_px": tile_px,
                    "halo_px": halo_px,
                    "max_abs_error": int(flat.max()),
                    "mean_abs_error": round(float(flat.mean()), 4),
                    "p99_abs_error": float(np.percentile(flat, 99)),
                    "fraction_differing": round(float((flat > 0).mean()), 4),
                    "seam_mean_abs_error": round(float(np.mean(seam)), 4),
                    "interior_mean_abs_error": round(float(np.mean(interior)), 4),
                }
            )
    print(
        json.dumps(
            {
                "model": origin,
                "train_seconds": round(train_s, 1),
                "images": len(test_images),
                "image_lr_shape": list(lrs[0].shape[:2]),
                "sr_psnr_gain_over_bicubic_db": round(float(np.mean(psnr_gain)), 3),
                "units": "8-bit levels (0-255) of the SR output",
                "reference": f"whole image with {REFERENCE_CONTEXT_PX} px reflected context",
                "torch": torch.__version__,
                "results": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
