"""Gradient clipping by global norm, folded into a fused optimizer's own step where it can be.

`torch.nn.utils.clip_grad_norm_` reads every gradient for the norm and then multiplies every gradient by the clip
factor (by 1.0 too, when nothing is clipped): two passes over 91 MB for MiniLM. A fused Adam/AdamW divides each
gradient by its `grad_scale` attribute inside its one kernel (the hook `torch.amp.GradScaler` uses), so the factor
goes there and the multiply pass is gone; the update is the same as clipping first.
"""

from __future__ import annotations

import torch


def foldable(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer` divides its gradients by `grad_scale` in its own step: the fused Adam family."""
    return isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW) and bool(optimizer.defaults.get("fused"))


def clip_grad_norm(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.Tensor:
    """Clip the gradients of `optimizer`'s parameters to a global 2-norm of at most `max_norm`; the norm before.

    Fused Adam/AdamW: the factor is left in `optimizer.grad_scale` for its next step (set on every call, so a
    step never sees an old one); others: the gradients are scaled in place, as `clip_grad_norm_` does.
    """
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads]))
    if foldable(optimizer):
        # the step divides by grad_scale: clip_grad_norm_'s factor min(1, max_norm / (norm + 1e-6)), inverted
        optimizer.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0).to(grads[0].device)
    else:
        factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        torch._foreach_mul_(grads, factor.to(grads[0].dtype))
    return norm
