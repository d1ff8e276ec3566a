"""Start a wider or deeper SR module from a trained smaller one.

Training the paper's 64-channel SR module from scratch on 2 CPU cores does not get far
within a session; a smaller module that is already trained holds most of what it must
learn. Net2Net (Chen, Goodfellow and Shlens, ICLR 2016) grows a network so that it starts
as the trained one.

**Wider** (more channels): the extra channels get fresh (PyTorch-default) incoming weights
and **zero outgoing weights**, so the wider module computes exactly what the narrower one
did, and the zero weights learn from the first step (the new channels' activations are not
zero). Unit replication, Net2Net's own rule, would need noise to break symmetry. Every conv
of SRMFENet keeps its channel layout when widened: old channels stay in front, and the
upsampler's ``C -> 4C`` conv feeds PixelShuffle, which takes output channel ``c`` from conv
channels ``4c .. 4c + 3``, so old channels' groups stay in front too. Only parameter-free
fusions (the paper's MSF, the mean) work per channel; the selective fusion mixes channels
in its FC layers and is refused.

**Deeper** (more MFE blocks): the trained blocks come first and the new ones follow with
their fresh weights scaled by ``NEW_BLOCK_WEIGHT_SCALE``. An MFE block adds its fused
branches to its input, so a block whose convs are small is close to the identity. It
cannot be the identity exactly: the branches are ReLU outputs fused with positive weights,
so they sum to zero only when every branch is zero, where ReLU passes no gradient and the
block could never learn. Small but non-zero weights keep half of the units active.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..model import SRMFENet

GROWABLE_FUSIONS = ("paper", "mean")
#: Scale of a new block's fresh conv weights, as EDSR scales its residual branches (0.1):
#: the bundled x2 model grown from 3 to 6 blocks moves by at most 0.01 on the 0-1 intensity
#: scale (0.002 root mean square, far below its error against HR; tests/test_grow.py). At
#: 0.01 the new blocks' weights were still 30x smaller than the trained blocks' after 141
#: steps at lr 2e-4: they would barely take part in a short fine-tune.
NEW_BLOCK_WEIGHT_SCALE = 0.1


def can_grow(source: SRMFENet, target: SRMFENet) -> bool:
    """True when ``target`` is ``source`` with more channels and/or more MFE blocks (and
    nothing else changed) and a per-channel fusion."""
    small, large = source.config, target.config
    return (
        large.channels >= small.channels
        and large.n_blocks >= small.n_blocks
        and (large.channels, large.n_blocks) != (small.channels, small.n_blocks)
        and replace(small, channels=large.channels, n_blocks=large.n_blocks) == large
        and large.fusion in GROWABLE_FUSIONS
    )


@torch.no_grad()
def grow_into(source: SRMFENet, target: SRMFENet) -> None:
    """Copy ``source`` into the leading channels and blocks of ``target`` (see the module
    text); the blocks beyond ``source``'s start small."""
    if not can_grow(source, target):
        raise ValueError(
            f"cannot grow a {source.config} into a {target.config}: only the channel count "
            f"and the number of blocks may grow, with fusion one of {GROWABLE_FUSIONS}"
        )
    wanted = target.state_dict()
    given = source.state_dict()
    for name, large in wanted.items():
        small = given.get(name)
        if small is None:  # a new block
            large.mul_(NEW_BLOCK_WEIGHT_SCALE)
            continue
        if small.ndim == 4:  # conv weight (out, in, k, k): new inputs feed old outputs nothing
            large[: small.shape[0], small.shape[1] :].zero_()
        large[tuple(slice(0, size) for size in small.shape)] = small
    target.load_state_dict(wanted)
