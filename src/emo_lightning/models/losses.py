"""Losses for single- and multi-label emotion data, each with optional class weighting from label counts.

Every loss is built with what the data says (`multi_label`, `label_counts`, `num_examples`), so a config
only chooses the loss and its knobs. Logits are cast to fp32 before any sigmoid/softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emo_lightning.utils.errors import ConfigError


def positive_weights(label_counts: torch.Tensor, num_examples: int, max_weight: float) -> torch.Tensor:
    """BCE `pos_weight` per label: negatives / positives, capped so very rare labels don't explode."""
    positives = label_counts.clamp(min=1.0)
    return ((num_examples - label_counts) / positives).clamp(min=1.0, max=max_weight)


def balanced_class_weights(label_counts: torch.Tensor, num_examples: int) -> torch.Tensor:
    """Softmax class weights n / (k · count_k) (scikit-learn's "balanced")."""
    return num_examples / (len(label_counts) * label_counts.clamp(min=1.0))


def as_multi_hot(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Class ids (batch,) → one-hot floats (batch, num_labels); multi-hot targets pass through as floats."""
    if targets.ndim == 1:
        return F.one_hot(targets.long(), num_labels).float()
    return targets.float()


class BCELoss(nn.Module):
    """Binary cross-entropy per label (one-vs-rest for single-label data).

    Args:
        class_weighting: weight each label's positives by negatives/positives (`pos_weight`).
        max_pos_weight: cap on that weight.
    """

    def __init__(
        self,
        multi_label: bool,
        label_counts: torch.Tensor,
        num_examples: int,
        class_weighting: bool = False,
        max_pos_weight: float = 30.0,
    ) -> None:
        super().__init__()
        weight = positive_weights(label_counts, num_examples, max_pos_weight) if class_weighting else None
        self.register_buffer("pos_weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return F.binary_cross_entropy_with_logits(
            logits, as_multi_hot(targets, logits.shape[-1]), pos_weight=self.pos_weight
        )


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy: single-label data only.

    Args:
        class_weighting: weight classes by n / (k · count) ("balanced").
        label_smoothing: as in `torch.nn.functional.cross_entropy`.
    """

    def __init__(
        self,
        multi_label: bool,
        label_counts: torch.Tensor,
        num_examples: int,
        class_weighting: bool = False,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if multi_label:
            raise ConfigError(
                "loss=ce needs single-label data, but this dataset is multi-label: use loss=bce or loss=focal"
            )
        self.register_buffer("weight", balanced_class_weights(label_counts, num_examples) if class_weighting else None)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets.long(), weight=self.weight, label_smoothing=self.label_smoothing)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_t)^gamma, down-weighting easy examples.

    Sigmoid form for multi-label data, softmax form for single-label data; gamma=0 gives BCE / CE exactly.

    Args:
        gamma: focusing strength.
        class_weighting: `pos_weight` per label (multi-label) or balanced class weights (single-label).
        max_pos_weight: cap on the multi-label positive weight.
    """

    def __init__(
        self,
        multi_label: bool,
        label_counts: torch.Tensor,
        num_examples: int,
        gamma: float = 2.0,
        class_weighting: bool = False,
        max_pos_weight: float = 30.0,
    ) -> None:
        super().__init__()
        self.multi_label = multi_label
        self.gamma = gamma
        weight = None
        if class_weighting:
            weight = (
                positive_weights(label_counts, num_examples, max_pos_weight)
                if multi_label
                else balanced_class_weights(label_counts, num_examples)
            )
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.multi_label:
            targets = as_multi_hot(targets, logits.shape[-1])
            ce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.weight, reduction="none")
            p = torch.sigmoid(logits)
            p_t = p * targets + (1 - p) * (1 - targets)
        else:
            ce = F.cross_entropy(logits, targets.long(), weight=self.weight, reduction="none")
            p_t = torch.softmax(logits, dim=-1).gather(1, targets.long().unsqueeze(1)).squeeze(1)
            if self.weight is not None:  # match weighted CE's mean: divide by the summed weights
                return ((1 - p_t) ** self.gamma * ce).sum() / self.weight[targets.long()].sum()
        return ((1 - p_t) ** self.gamma * ce).mean()


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al. 2021) for multi-label data with many rare labels.

    Easy negatives — the bulk of a 28-label problem — are down-weighted by p^gamma_neg, and negatives with
    p < clip are ignored (probability shifting), while positives keep (nearly) their full BCE gradient.
    gamma_neg = gamma_pos = clip = 0 gives BCE exactly. Averaged like BCE (over texts × labels).

    Args:
        gamma_neg: focusing strength on negatives.
        gamma_pos: focusing strength on positives.
        clip: probability margin under which a negative costs nothing.
    """

    def __init__(
        self,
        multi_label: bool,
        label_counts: torch.Tensor,
        num_examples: int,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
    ) -> None:
        super().__init__()
        if not multi_label:
            raise ConfigError(
                "loss=asl is for multi-label data, but this dataset is single-label: use loss=ce or loss=focal"
            )
        if not 0.0 <= clip < 1.0 or gamma_neg < 0 or gamma_pos < 0:
            raise ConfigError("loss=asl needs 0 ≤ clip < 1 and gamma_neg, gamma_pos ≥ 0: e.g. clip=0.05 gamma_neg=4")
        self.gamma_neg, self.gamma_pos, self.clip = gamma_neg, gamma_pos, clip

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        targets = as_multi_hot(targets, logits.shape[-1])
        p = torch.sigmoid(logits)
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        # log(p) and log(1 - p_neg) from logsigmoid where possible, for stability
        log_p = F.logsigmoid(logits)
        log_not_p = F.logsigmoid(-logits) if self.clip == 0 else torch.log1p(-p_neg).clamp(min=-100)
        positive = targets * (1 - p) ** self.gamma_pos * log_p
        negative = (1 - targets) * p_neg**self.gamma_neg * log_not_p
        return -(positive + negative).mean()


def default_loss(
    multi_label: bool, label_counts: torch.Tensor, num_examples: int, class_weighting: bool = False
) -> nn.Module:
    """BCE for multi-label data, cross-entropy for single-label data."""
    cls = BCELoss if multi_label else CrossEntropyLoss
    return cls(multi_label, label_counts, num_examples, class_weighting=class_weighting)
