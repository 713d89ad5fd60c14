"""After training: whole-split probabilities, thresholds tuned on validation, metrics at those thresholds.

The probabilities come from `inference.engine.predict_probabilities`, the label sets from `decide`: the same path as
`EmotionPredictor`, so predictions/*.csv hold what the exported model predicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from emo_lightning.inference.engine import Backend, decide, predict_probabilities
from emo_lightning.models.thresholds import ThresholdTuner, binary_f1, micro_f1, sample_jaccard

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def gold_sets(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    if targets.ndim == 1:
        return torch.nn.functional.one_hot(targets.long(), num_labels).bool()
    return targets.bool()


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


def stage_of(split: str) -> str:
    """The metric prefix of a dataset split (Lightning's names): validation → val."""
    return "val" if split == "validation" else split


@dataclass
class SplitOutputs:
    """One split's examples, in the dataset's order: probabilities, gold and predicted label sets (bool)."""

    probs: torch.Tensor
    gold: torch.Tensor
    pred: torch.Tensor


@dataclass
class Evaluation:
    """What `evaluate_splits` found: tuned metrics, per-label F1 and confusion counts per stage, the thresholds."""

    metrics: dict[str, float] = field(default_factory=dict)  # `<stage>/<metric>_tuned` (multi-label only)
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, torch.Tensor] = field(default_factory=dict)  # single-label: (true, predicted) counts
    thresholds: list[float] | None = None
    outputs: dict[str, SplitOutputs] = field(default_factory=dict)


def evaluate_splits(
    backend: Backend,
    tokenizer: PreTrainedTokenizerBase,
    texts: Mapping[str, Sequence[str]],
    labels: Mapping[str, Sequence],
    label_names: list[str],
    multi_label: bool,
    tuner: ThresholdTuner | None,
    *,
    max_length: int = 512,
    batch_size: int = 64,
    threshold: float = 0.5,
) -> Evaluation:
    """Probabilities of every split's `texts` (split name → texts, gold `labels` alike: class ids or multi-hot rows);
    thresholds tuned on `validation` (never on test), then every split scored with them (untuned: `threshold`)."""
    collected = {
        split: (
            predict_probabilities(backend, tokenizer, list(split_texts), max_length, multi_label, batch_size),
            torch.as_tensor(list(labels[split])),
        )
        for split, split_texts in texts.items()
    }
    return score_splits(collected, label_names, multi_label, tuner, threshold)


def score_splits(
    collected: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    label_names: list[str],
    multi_label: bool,
    tuner: ThresholdTuner | None,
    threshold: float,
) -> Evaluation:
    """Tune on validation's (probabilities, targets), then decide and score every split."""
    thresholds, at_least_one = None, False
    if multi_label and tuner is not None:
        thresholds, at_least_one = tuner(*collected["validation"]), tuner.at_least_one
    result = Evaluation(thresholds=None if thresholds is None else [round(float(t), 4) for t in thresholds])
    for split, (probs, targets) in collected.items():
        stage = stage_of(split)
        gold = gold_sets(targets, len(label_names))
        pred = decide(probs, multi_label, thresholds if thresholds is not None else threshold, at_least_one)
        result.outputs[stage] = SplitOutputs(probs, gold, pred)
        result.per_label[stage] = per_label_f1(pred, gold, label_names)
        if thresholds is not None:
            result.metrics |= {f"{stage}/{name}_tuned": value for name, value in set_metrics(pred, gold).items()}
        if not multi_label:
            result.confusion[stage] = gold.long().T @ pred.long()
    return result
