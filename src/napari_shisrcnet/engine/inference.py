"""Run a network on batches of uint8 tiles on the best device, fast and safely.

uint8 tiles travel to the device (4x less traffic than float), are converted there,
run channels_last under bf16/fp16 autocast on CUDA (falling back to fp32 for a batch
that produces NaN/Inf), and SR output is quantised back to uint8 on the device. A
batch that runs out of device memory is split in half and retried; the smaller
batch size is kept for the rest of the run.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else is passed to torch.device."""
    if str(spec) != "auto":
        device = torch.device(spec)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device '{spec}' requested but CUDA is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class TileModel:
    """A network wrapped for uint8 tile batches (numpy (B, H, W, 3) in, numpy out)."""

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "auto",
        autocast: bool = True,
        *,
        class_names: tuple[str, ...] = (),
        identity: str = "",
        training_tile_px: int | None = None,
    ):
        self.device = resolve_device(device)
        self.class_names = tuple(class_names)
        self.identity = identity or type(model).__name__  # what a result signature records
        self.training_tile_px = training_tile_px  # LR field of view the classifier learnt on
        self.model = model.eval().to(self.device)
        if self.device.type != "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        # SR alone runs only the SR module, so SR-only jobs never pay for the classifier.
        self.sr_module = getattr(self.model, "sr_module", self.model)
        self.autocast_dtype = _autocast_dtype(self.device) if autocast else None
        self.max_batch: int | None = None

    @property
    def scale(self) -> int:
        return int(getattr(self.model, "scale", 1))

    @property
    def can_super_resolve(self) -> bool:
        return hasattr(self.model, "scale")

    @property
    def can_classify(self) -> bool:
        return hasattr(self.model, "classifier")

    def _to_device(self, tiles: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(np.ascontiguousarray(tiles))
        if self.device.type == "cuda":
            host = host.pin_memory()
        batch = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        return batch.contiguous(memory_format=torch.channels_last)

    def _forward(self, module: nn.Module, batch: torch.Tensor, dtype: torch.dtype | None):
        context = (
            torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        )
        with torch.inference_mode(), context:
            return module(batch)

    def _run(self, tiles: np.ndarray, module: nn.Module, select, finish) -> np.ndarray:
        """Forward in chunks of at most ``max_batch``; split on OOM; fp32 retry on NaN/Inf.

        ``select`` picks the float tensor from the module's output (checked for
        finiteness); ``finish`` turns it into what is returned (on the device).
        """
        limit = self.max_batch or len(tiles)
        if len(tiles) > limit:
            chunks = [
                self._run(tiles[i : i + limit], module, select, finish)
                for i in range(0, len(tiles), limit)
            ]
            return np.concatenate(chunks)
        try:
            batch = self._to_device(tiles)
            result = select(self._forward(module, batch, self.autocast_dtype)).float()
            if self.autocast_dtype and not torch.isfinite(result).all():
                log.warning(
                    "non-finite output under %s autocast; recomputing in fp32", self.autocast_dtype
                )
                result = select(self._forward(module, batch, None)).float()
            return finish(result).cpu().numpy()
        except torch.OutOfMemoryError:
            if len(tiles) == 1:
                raise
            self.max_batch = max(1, len(tiles) // 2)
            log.warning("out of device memory; batch size reduced to %d", self.max_batch)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._run(tiles, module, select, finish)

    def super_resolve(self, tiles: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, H*scale, W*scale, 3) uint8."""
        return self._run(
            tiles,
            self.sr_module,
            lambda output: output.sr if hasattr(output, "sr") else output,
            lambda sr: (sr.clamp(0, 1) * 255.0).round_().to(torch.uint8).permute(0, 2, 3, 1),
        )

    def classify(self, tiles: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 LR tiles -> (B, n_classes) float32 probabilities."""
        if not self.can_classify:
            raise ValueError("this model has no classifier (use a SHISRCNet checkpoint)")
        return self._run(
            tiles, self.model, lambda output: output.logits_sr, lambda logits: logits.softmax(dim=1)
        )
