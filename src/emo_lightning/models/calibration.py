"""Temperature scaling: calibrated probabilities from logits divided by temperatures fitted on validation.

Single-label: one temperature T for the softmax (the argmax is unchanged). Multi-label: one per label for its sigmoid;
a threshold t on the uncalibrated scale becomes sigmoid(logit(t) / T) on the calibrated one, and the at_least_one
label is picked by the uncalibrated score T · logit(p) (`thresholds.fallback_labels`: per-label temperatures can
reorder the calibrated probabilities), so every decision stays the one tuned on validation. In the model folder the
temperatures are folded into the head's final linear layer (logits / T = (W / T) x + b / T), so every consumer of the
weights (`pipeline()`, ONNX) gets calibrated probabilities.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from emo_lightning.models.heads import PooledHead

# The search interval of each temperature. Below 0.2 a threshold in [0.05, 0.95] would map past float32's last sigmoid
# value below 1 (|logit(t) / T| > 16.6), and ties with saturated probabilities could flip decisions.
T_MIN, T_MAX = 0.2, 20.0
MIN_EXAMPLES = 5  # a multi-label label with fewer validation positives (or negatives) keeps T = 1
SEARCH_STEPS = 40  # golden-section steps: the interval of log T shrinks by 0.618 each, to ~1e-8
ECE_BINS = 15
GOLDEN = (math.sqrt(5) - 1) / 2


def _nll(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool, log_t: torch.Tensor) -> torch.Tensor:
    """Validation NLL at temperatures exp(log_t): (1,) for the softmax, (labels,) for the per-label sigmoids."""
    scaled = logits / log_t.exp()
    if multi_label:
        return F.binary_cross_entropy_with_logits(scaled, targets, reduction="none").mean(dim=0)
    return F.cross_entropy(scaled, targets).unsqueeze(0)


def fit_temperatures(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> list[float]:
    """Temperatures minimizing the NLL of (logits, targets): class ids (single-label) or multi-hot rows.

    Golden-section search on log T in [T_MIN, T_MAX], every label at once (the NLL is convex in 1/T, so unimodal in
    log T). A label with fewer than MIN_EXAMPLES positive or negative examples keeps T = 1 (with none, its NLL falls
    without bound; with a few, T would fit them alone). Rounded to 4 digits; one value (single-label) or one per label.
    """
    count = logits.shape[1] if multi_label else 1
    if logits.shape[0] == 0:
        return [1.0] * count
    logits = logits.double()
    targets = targets.double() if multi_label else targets.long()
    low = torch.full((count,), math.log(T_MIN), dtype=torch.float64)
    high = torch.full((count,), math.log(T_MAX), dtype=torch.float64)
    for _ in range(SEARCH_STEPS):
        left, right = high - GOLDEN * (high - low), low + GOLDEN * (high - low)
        in_left = _nll(logits, targets, multi_label, left) < _nll(logits, targets, multi_label, right)
        high, low = torch.where(in_left, right, high), torch.where(in_left, low, left)
    temperatures = ((low + high) / 2).exp()
    if multi_label:
        positives = targets.sum(dim=0)
        too_few = (positives < MIN_EXAMPLES) | (targets.shape[0] - positives < MIN_EXAMPLES)
        temperatures = torch.where(too_few, torch.ones_like(temperatures), temperatures)
    return [round(float(t), 4) for t in temperatures]


def calibrated_thresholds(thresholds: list[float], temperatures: list[float]) -> list[float]:
    """Multi-label thresholds on the calibrated scale: sigmoid(logit(t) / T) per label, so that p >= t exactly when
    calibrated p >= t' (not rounded: a rounded threshold could flip a decision)."""
    t = torch.tensor(thresholds, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return [float(v) for v in torch.sigmoid(torch.logit(t) / torch.tensor(temperatures, dtype=torch.float64))]


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> float:
    """ECE (15 equal-width bins, L1). Single-label: torchmetrics' multiclass (top-label) ECE of class ids `targets`.
    Multi-label: torchmetrics has none; the binary ECE of each label's sigmoid, averaged over the labels."""
    # here, not at the top: torchmetrics imports lightning_utilities, which prediction must not load
    from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

    probs = probs.float()
    if multi_label:
        errors = [
            binary_calibration_error(probs[:, i].contiguous(), targets[:, i].long(), ECE_BINS)
            for i in range(probs.shape[1])
        ]
        return float(torch.stack(errors).mean())
    return float(multiclass_calibration_error(probs, targets.long(), probs.shape[1], ECE_BINS))


def folded_head_weights(head: nn.Module, temperatures: list[float]) -> dict[str, torch.Tensor] | None:
    """The head's fp32 weights with the temperatures folded in (its logits come out divided by them); None where
    they cannot be folded (see `PooledHead.temperature_layers`; the engine then divides the logits)."""
    names = head.temperature_layers(temperatures) if isinstance(head, PooledHead) else None
    if names is None:
        return None
    state = {k: v.detach().float().cpu().contiguous() for k, v in head.state_dict().items()}
    divisors = torch.tensor(temperatures, dtype=torch.float64)
    if head.shares_one_temperature():
        divisors = divisors[:1]  # one temperature, shared by the scorer and every label's bias
    for name in names:
        value = state[name].double()
        shaped = divisors.view(-1, *([1] * (value.ndim - 1))) if value.ndim > 1 and divisors.numel() > 1 else divisors
        state[name] = (value / shaped).float().contiguous()
    return state


def uncalibrated(probs: torch.Tensor, temperatures: list[float], multi_label: bool) -> torch.Tensor:
    """The probabilities before temperature scaling, recovered from the calibrated ones: sigmoid(logit(p) · T)
    per label, or softmax(log(p) · T) (exact up to float rounding: log p is the scaled logits up to a shift)."""
    scale = torch.tensor(temperatures, dtype=torch.float64)
    p = probs.double()
    if multi_label:
        return torch.sigmoid(torch.logit(p.clamp(1e-12, 1 - 1e-12)) * scale)
    return torch.softmax(p.clamp_min(1e-300).log() * scale, dim=1)
