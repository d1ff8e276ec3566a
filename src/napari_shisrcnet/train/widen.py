"""Start a wider SR module from a trained narrower one, computing the same function.

Training the paper's 64-channel SR module from scratch on 2 CPU cores does not get far
within a session; a 32-channel module that is already trained holds most of what it must
learn. Net2Net (Chen, Goodfellow and Shlens, ICLR 2016) grows a network so that it starts
as the trained one; here the extra channels get fresh (PyTorch-default) incoming weights
and **zero outgoing weights**, so the wider module computes exactly what the narrower one
did, and the zero weights learn from the first step (the new channels' activations are not
zero). Unit replication, Net2Net's own rule, would need noise to break symmetry.

Every conv of SRMFENet keeps its channel layout when widened: old channels stay in front,
and the upsampler's ``C -> 4C`` conv feeds PixelShuffle, which takes output channel
``c`` from conv channels ``4c .. 4c + 3``, so old channels' groups stay in front too. Only
parameter-free fusions (the paper's MSF, the mean) work per channel; the selective fusion
mixes channels in its FC layers and is refused.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..model import SRMFENet

WIDENABLE_FUSIONS = ("paper", "mean")


def can_widen(source: SRMFENet, target: SRMFENet) -> bool:
    """True when ``target`` is ``source`` with more channels and a per-channel fusion."""
    narrow, wide = source.config, target.config
    return (
        wide.channels > narrow.channels
        and replace(narrow, channels=wide.channels) == wide
        and wide.fusion in WIDENABLE_FUSIONS
    )


@torch.no_grad()
def widen_into(source: SRMFENet, target: SRMFENet) -> None:
    """Copy ``source`` into the leading channels of ``target`` (see the module text)."""
    if not can_widen(source, target):
        raise ValueError(
            f"cannot widen a {source.config} into a {target.config}: only the channel count "
            f"may grow, with fusion one of {WIDENABLE_FUSIONS}"
        )
    wanted = target.state_dict()
    for name, narrow in source.state_dict().items():
        wide = wanted[name]
        if narrow.ndim == 4:  # conv weight (out, in, k, k): new inputs feed old outputs nothing
            wide[: narrow.shape[0], narrow.shape[1] :].zero_()
        wide[tuple(slice(0, size) for size in narrow.shape)] = narrow
    target.load_state_dict(wanted)
