"""Dropout with masks drawn from 16-bit random numbers: the distribution of `nn.Dropout`, a fraction of its RNG cost.

`nn.Dropout` on a CPU draws one float per element (`bernoulli_`); a 32-bit random number here makes two masks'
worth. An element is kept when its 16-bit draw is at or above round(p·65536), so the drop probability is p rounded
to 1/65,536 (0.1 → 0.10000610), and kept elements are scaled by the inverse of the exact keep probability, so
every output's mean equals its input, as with `nn.Dropout`. Draws come from torch's generator: `torch.manual_seed`
and Lightning's seeding make them reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 1 << 16


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A boolean mask of `shape` keeping each element with probability 1 − p (p in 1/65,536 steps), and the scale
    1 / P(keep) for the kept ones."""
    count = torch.Size(shape).numel()
    words = torch.empty((count + 1) // 2, dtype=torch.int32, device=device).random_(-(1 << 31), 1 << 31)
    draws = words.view(torch.int16)[:count].view(shape)  # uniform over −32,768 … 32,767
    dropped = round(p * LEVELS)
    return draws >= dropped - LEVELS // 2, LEVELS / (LEVELS - dropped)


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return torch.where(mask, x * scale, 0.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return torch.where(mask, grad * ctx.scale, 0.0), None, None


class FastDropout(nn.Dropout):
    """`nn.Dropout` (same `p`, same train/eval behaviour) with masks from `keep_mask`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0.0
        mask, scale = keep_mask(x.shape, self.p, x.device)
        return _MaskedScale.apply(x, mask, scale)


def use_fast_dropout(module: nn.Module) -> int:
    """Make every `nn.Dropout` inside `module` a `FastDropout` (in place, parameters untouched); how many."""
    swapped = 0
    for child in module.modules():
        if type(child) is nn.Dropout:
            child.__class__ = FastDropout
            swapped += 1
    return swapped
