"""The metrics the Lightning loop accumulates over a whole split (torchmetrics: nothing is averaged per batch, and
DDP ranks are summed before dividing); the Jaccard is `metrics.jaccard_per_text`, the formula everything else uses."""

from __future__ import annotations

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAUROC,
    MultilabelExactMatch,
    MultilabelF1Score,
)

from emo_lightning.models.metrics import jaccard_per_text


class SampleJaccard(Metric):
    """Sample-averaged Jaccard |pred ∩ gold| / |pred ∪ gold| (SemEval-2018 E-c's official metric).

    A text with no gold and no predicted label counts as a perfect match (1.0), as in the task's scorer.
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, threshold: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        self.total += jaccard_per_text(probs >= self.threshold, target.bool()).sum()
        self.count += target.shape[0]

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()


def build_metrics(num_labels: int, multi_label: bool, threshold: float = 0.5, **kwargs) -> MetricCollection:
    """Metrics for the task; inputs are probabilities (batch, num_labels) and int targets. `kwargs` go to every
    metric (e.g. `sync_on_compute=False`: one process's whole split, no gathering over DDP ranks)."""
    if not multi_label:
        return MetricCollection(
            {
                "accuracy": MulticlassAccuracy(num_labels, average="micro", **kwargs),
                "f1_macro": MulticlassF1Score(num_labels, average="macro", **kwargs),
                "f1_weighted": MulticlassF1Score(num_labels, average="weighted", **kwargs),
            }
        )
    return MetricCollection(
        {
            "f1_micro": MultilabelF1Score(num_labels, threshold=threshold, average="micro", **kwargs),
            "f1_macro": MultilabelF1Score(num_labels, threshold=threshold, average="macro", **kwargs),
            "auroc_micro": MultilabelAUROC(num_labels, average="micro", **kwargs),
            "auroc_macro": MultilabelAUROC(num_labels, average="macro", **kwargs),
            "jaccard": SampleJaccard(threshold=threshold, **kwargs),
            "exact_match": MultilabelExactMatch(num_labels, threshold=threshold, **kwargs),
        }
    )


def headline_metric(multi_label: bool) -> str:
    """The metric that picks the best checkpoint: accuracy (single-label), macro-F1 (multi-label)."""
    return "f1_macro" if multi_label else "accuracy"
