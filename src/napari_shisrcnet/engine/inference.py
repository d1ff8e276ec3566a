"""Run a network on batches of uint8 tiles on the best device, fast and safely.

uint8 tiles travel to the device (4x less traffic than float), are converted there,
run channels_last under bf16/fp16 autocast on CUDA (falling back to fp32 for a batch
that produces NaN/Inf), and SR output is quantised back to uint8 on the device. A
batch that runs out of device memory is split in half and retried; the smaller
batch size is kept for the rest of the run.

On CUDA nothing waits for the GPU while batches are submitted: pinned uploads go on a
side stream (so the next batch's copy overlaps this batch's compute), results come
back through pinned buffers, and :meth:`TileModel.start` returns a
:class:`PendingResult` that the caller (the runner's writer thread) resolves later.
``compile=True`` runs the network through ``torch.compile`` with fixed shapes (short
batches are padded to the batch size, so one graph serves the whole run);
``cuda_graphs=True`` additionally replays CUDA graphs (torch.compile's
"reduce-overhead" mode).
"""

from __future__ import annotations

import contextlib
import logging
from typing import cast

import numpy as np
import torch
from torch import nn

from ..errors import OptionError

log = logging.getLogger(__name__)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; else 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    if str(spec) != "auto":
        try:
            device = torch.device(spec)
        except (RuntimeError, TypeError):
            raise OptionError(
                f"device '{spec}' is not one of auto, cpu, cuda, cuda:N, mps", "device"
            ) from None
        _check_available(device, str(spec))
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_available(device: torch.device, spec: str) -> None:
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"device '{spec}' requested but CUDA is not available here", "device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise OptionError(f"device '{spec}' requested; this machine has {count} GPU(s)", "device")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise OptionError(f"device '{spec}' requested but MPS is not available here", "device")
    if device.type not in ("cpu", "cuda", "mps"):
        raise OptionError(f"device '{spec}' is not one of auto, cpu, cuda, cuda:N, mps", "device")


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _uncompiled(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper runs (or the module itself)."""
    return getattr(module, "_orig_mod", module)


class PendingResult:
    """A batch result that may still be on its way from the device."""

    def __init__(self, ready=None, *, event=None, host=None, finite=None, retry=None):
        self._ready, self._event, self._host = ready, event, host
        self._finite, self._retry = finite, retry

    def result(self) -> np.ndarray:
        if self._ready is None:
            self._event.synchronize()  # the copy into the pinned buffer has landed
            if self._finite is not None and not bool(self._finite):
                log.warning("non-finite output under autocast; recomputing in fp32")
                self._ready = self._retry()
            else:
                self._ready = self._host.numpy()
            self._event = self._host = self._finite = self._retry = None
        return self._ready


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
        lr_mpp: float | None = None,
        class_logit_offsets: tuple[float, ...] | None = None,
        compile: bool = False,
        cuda_graphs: bool = False,
    ):
        self.device = resolve_device(device)
        self.class_names = tuple(class_names)
        self.identity = identity or type(model).__name__  # what a result signature records
        self.training_tile_px = training_tile_px  # LR field of view the classifier learnt on
        self.lr_mpp = lr_mpp  # µm/px of the LR images it learnt on (None: not recorded)
        # A decision threshold chosen on validation, as offsets added to the class logits.
        self.class_logit_offsets = class_logit_offsets
        self._offsets = (
            None
            if class_logit_offsets is None
            else torch.tensor(class_logit_offsets, dtype=torch.float32, device=self.device)
        )
        self.model = model.eval().to(self.device)
        if self.device.type != "cpu":
            # Documented in Module.to, but missing from its typed overloads.
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # SR alone runs only the SR module, so SR-only jobs never pay for the classifier.
        self.sr_module = getattr(self.model, "sr_module", self.model)
        self.classify_module = self.model
        self.compiled = compile or cuda_graphs
        self._fixed_sizes: dict[tuple, int] = {}  # (module, tile shape) -> padded batch size
        if self.compiled:
            # Fixed shapes (see _fixed_batch), no dynamic dims: one graph per tile shape.
            mode = "reduce-overhead" if cuda_graphs and self.device.type == "cuda" else None
            # torch.compile of a module returns a module (its OptimizedModule wrapper).
            self.sr_module = cast(
                nn.Module, torch.compile(self.sr_module, dynamic=False, mode=mode)
            )
            self.classify_module = cast(
                nn.Module, torch.compile(self.model, dynamic=False, mode=mode)
            )
        self.autocast_dtype = _autocast_dtype(self.device) if autocast else None
        self.max_batch: int | None = None
        self._copy_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

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
        if self._copy_stream is None:
            staged = host.to(self.device)
        else:
            compute = torch.cuda.current_stream(self.device)
            with torch.cuda.stream(self._copy_stream):
                staged = host.pin_memory().to(self.device, non_blocking=True)
            compute.wait_stream(self._copy_stream)
            staged.record_stream(compute)  # its memory is not reused before compute is done
        batch = staged.permute(0, 3, 1, 2).float().div_(255.0)
        return batch.contiguous(memory_format=torch.channels_last)

    def _forward(self, module: nn.Module, batch: torch.Tensor, dtype: torch.dtype | None):
        context = (
            torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        )
        with torch.inference_mode(), context:
            return module(batch)

    def _fixed_batch(self, tiles: np.ndarray, module: nn.Module) -> np.ndarray:
        """A compiled model sees few batch sizes: pad a short batch with its last tile.

        Batches are padded to the largest size seen for this module and tile shape (capped
        by ``max_batch`` after an out-of-memory split), so a run's short last batch reuses
        the graph of its full batches.
        """
        if not self.compiled:
            return tiles
        key = (id(module), tiles.shape[1:])
        size = max(self._fixed_sizes.get(key, 0), len(tiles))
        size = min(size, self.max_batch or size)
        self._fixed_sizes[key] = size
        if len(tiles) >= size:
            return tiles
        return np.concatenate([tiles, np.repeat(tiles[-1:], size - len(tiles), axis=0)])

    def _start(self, tiles: np.ndarray, module: nn.Module, select, finish) -> PendingResult:
        """Submit in chunks of at most ``max_batch``; split on OOM; fp32 retry on NaN/Inf.

        ``select`` picks the float tensor from the module's output (checked for
        finiteness); ``finish`` turns it into what is returned (on the device).
        """
        limit = self.max_batch or len(tiles)
        if len(tiles) > limit:
            parts = [
                self._start(tiles[i : i + limit], module, select, finish)
                for i in range(0, len(tiles), limit)
            ]
            return _Joined(parts)
        original = tiles
        try:
            count, tiles = len(tiles), self._fixed_batch(tiles, module)
            batch = self._to_device(tiles)
            result = select(self._forward(module, batch, self.autocast_dtype)).float()
            finite = torch.isfinite(result).all() if self.autocast_dtype else None

            def in_fp32() -> np.ndarray:
                # Rare; may run on the writer thread: eager (no recompile, no graph pool),
                # re-uploaded from the host copy, in halves if memory is short.
                return self._eager_fp32(original, _uncompiled(module), select, finish)

            output = finish(result)[:count]
            if self.device.type != "cuda":
                if finite is not None and not bool(finite):
                    log.warning("non-finite output under autocast; recomputing in fp32")
                    return PendingResult(in_fp32())
                return PendingResult(output.cpu().numpy())
            return self._copy_back(output, finite, in_fp32)
        except torch.OutOfMemoryError:
            if len(tiles) == 1:
                raise
            self.max_batch = max(1, len(tiles) // 2)
            log.warning("out of device memory; batch size reduced to %d", self.max_batch)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._start(original, module, select, finish)

    def _eager_fp32(self, tiles: np.ndarray, module: nn.Module, select, finish) -> np.ndarray:
        try:
            output = select(self._forward(module, self._to_device(tiles), None)).float()
            return finish(output).cpu().numpy()
        except torch.OutOfMemoryError:
            if len(tiles) == 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(tiles) // 2
            return np.concatenate(
                [
                    self._eager_fp32(part, module, select, finish)
                    for part in (tiles[:half], tiles[half:])
                ]
            )

    def _copy_back(self, output: torch.Tensor, finite, in_fp32) -> PendingResult:
        """Start the device-to-host copy into pinned memory; do not wait for it."""
        host = torch.empty(output.shape, dtype=output.dtype, pin_memory=True)
        host.copy_(output, non_blocking=True)
        if finite is not None:
            finite_host = torch.empty((), dtype=torch.bool, pin_memory=True)
            finite = finite_host.copy_(finite, non_blocking=True)
        event = torch.cuda.Event(blocking=True)  # the writer sleeps instead of spinning
        event.record(torch.cuda.current_stream(self.device))
        return PendingResult(event=event, host=host, finite=finite, retry=in_fp32)

    def super_resolve(self, tiles: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, H*scale, W*scale, 3) uint8."""
        return self.start_super_resolve(tiles).result()

    def start_super_resolve(self, tiles: np.ndarray) -> PendingResult:
        """:meth:`super_resolve` without waiting for the device."""
        return self._start(
            tiles,
            self.sr_module,
            lambda output: output.sr if hasattr(output, "sr") else output,
            lambda sr: (sr.clamp(0, 1) * 255.0).round_().to(torch.uint8).permute(0, 2, 3, 1),
        )

    def classify(self, tiles: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 LR tiles -> (B, n_classes) float32 probabilities."""
        return self.start_classify(tiles).result()

    def start_classify(self, tiles: np.ndarray) -> PendingResult:
        """:meth:`classify` without waiting for the device."""
        if not self.can_classify:
            raise ValueError("this model has no classifier (use a SHISRCNet checkpoint)")
        return self._start(
            tiles,
            self.classify_module,
            lambda output: output.logits_sr,
            self._probabilities,
        )

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self._offsets is not None:
            logits = logits.float() + self._offsets
        return logits.softmax(dim=1)


class _Joined(PendingResult):
    """Chunks of one batch, resolved and concatenated in order."""

    def __init__(self, parts: list[PendingResult]):
        super().__init__()
        self._parts = parts

    def result(self) -> np.ndarray:
        if self._ready is None:
            self._ready = np.concatenate([part.result() for part in self._parts])
            self._parts = []
        return self._ready
