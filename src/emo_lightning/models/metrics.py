"""The metric formulas on predicted and gold label sets (F1, sample Jaccard, exact match): threshold tuning, the
final evaluation, the analysis tasks and the export checks score with these, and the Lightning loop's streaming
collection (`loop_metrics`) uses the same Jaccard. Light: torch only, so that inference imports stay small."""

from __future__ import annotations

import torch


def binary_f1(pred: torch.Tensor, gold: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """F1 along `dim` of boolean tensors; 0 where there is neither a prediction nor a gold label."""
    tp = (pred & gold).sum(dim).double()
    denominator = pred.sum(dim).double() + gold.sum(dim).double()
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))


def jaccard_per_text(pred: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """|pred ∩ gold| / |pred ∪ gold| of each text (row) of boolean tensors; a text with neither counts 1."""
    inter = (pred & gold).sum(1).double()
    union = (pred | gold).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def sample_jaccard(pred: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """Mean over texts of `jaccard_per_text` (SemEval-2018 E-c's official metric)."""
    return jaccard_per_text(pred, gold).mean()


def micro_f1(pred: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    return binary_f1(pred.flatten(), gold.flatten())


def set_metrics(pred: torch.Tensor, gold: torch.Tensor) -> dict[str, float]:
    """Multi-label metrics of predicted label sets: micro/macro F1, sample Jaccard, exact match."""
    return {
        "f1_micro": float(micro_f1(pred, gold)),
        "f1_macro": float(binary_f1(pred, gold, dim=0).mean()),
        "jaccard": float(sample_jaccard(pred, gold)),
        "exact_match": float((pred == gold).all(dim=1).double().mean()),
    }


def per_label_f1(pred: torch.Tensor, gold: torch.Tensor, label_names: list[str]) -> dict[str, float]:
    return {name: round(float(f1), 4) for name, f1 in zip(label_names, binary_f1(pred, gold, dim=0))}
