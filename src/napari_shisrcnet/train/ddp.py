"""Multi-GPU (or multi-process CPU) data parallel training with torch DDP.

Launched by ``torchrun``, which sets RANK, WORLD_SIZE and LOCAL_RANK:

    torchrun --standalone --nproc_per_node 4 -m napari_shisrcnet train DATA --out DIR

Each process trains on its own share of every epoch's batches (so the effective batch
is ``batch_size x world_size``); gradients are averaged by DDP; BatchNorm statistics
follow rank 0 (DDP broadcasts buffers). Every rank validates the same synchronised
model, so early-stopping decisions agree without extra communication; only rank 0
writes checkpoints, logs and events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start_process_group() -> Rank:
    """Join the process group torchrun prepared (a no-op in a single process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Rank()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Rank(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(rank: Rank, requested: torch.device) -> torch.device:
    """One GPU per process under DDP; the requested device otherwise."""
    if rank.distributed and requested.type == "cuda":
        torch.cuda.set_device(rank.local_rank)
        return torch.device("cuda", rank.local_rank)
    return requested


def wrap(model: torch.nn.Module, rank: Rank, device: torch.device) -> torch.nn.Module:
    if not rank.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def share(batches: list, rank: Rank) -> list:
    """This rank's batches: an equal number on every rank (DDP needs matching steps)."""
    usable = len(batches) - len(batches) % rank.world_size if rank.distributed else len(batches)
    return batches[:usable][rank.rank :: rank.world_size] or batches[:1]


def finish(rank: Rank) -> None:
    if rank.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
