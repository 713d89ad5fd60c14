"""After training: whole-split probabilities, thresholds tuned on validation, metrics at those thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from emo_lightning.data.batching import restore_order
from emo_lightning.models.classifier import EmotionClassifier
from emo_lightning.models.thresholds import ThresholdTuner, binarize, binary_f1, micro_f1, sample_jaccard


@torch.inference_mode()
def collect_probabilities(module: EmotionClassifier, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 probabilities and targets of every example `loader` yields, in the dataset's order."""
    module.eval()
    probs, targets = [], []
    for batch in loader:
        logits = module(batch["input_ids"].to(module.device), batch["attention_mask"].to(module.device))
        probs.append(module.probabilities(logits).cpu())
        targets.append(batch["labels"].cpu())
    probs, targets = torch.cat(probs), torch.cat(targets)
    order = getattr(loader.batch_sampler, "order", None)  # length-sorted evaluation batches
    if order is not None:
        probs, targets = restore_order(probs, order), restore_order(targets, order)
    return probs, targets


def predicted_sets(
    probs: torch.Tensor, multi_label: bool, thresholds: torch.Tensor | float, at_least_one: bool = False
) -> torch.Tensor:
    """Boolean (texts, labels): the labels above threshold (multi-label) or the top label (single-label)."""
    if multi_label:
        return binarize(probs, thresholds, at_least_one)
    return torch.nn.functional.one_hot(probs.argmax(1), probs.shape[1]).bool()


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
    module: EmotionClassifier,
    loaders: dict[str, DataLoader],
    label_names: list[str],
    multi_label: bool,
    tuner: ThresholdTuner | None,
) -> Evaluation:
    """Tune thresholds on `loaders["validation"]` (never on test), then score every split with them."""
    collected = {split: collect_probabilities(module, loader) for split, loader in loaders.items()}
    thresholds, at_least_one = None, False
    if multi_label and tuner is not None:
        thresholds, at_least_one = tuner(*collected["validation"]), tuner.at_least_one
    result = Evaluation(thresholds=None if thresholds is None else [round(float(t), 4) for t in thresholds])
    for split, (probs, targets) in collected.items():
        stage = stage_of(split)
        gold = gold_sets(targets, len(label_names))
        cut = thresholds if thresholds is not None else module.threshold
        pred = predicted_sets(probs, multi_label, cut, at_least_one)
        result.outputs[stage] = SplitOutputs(probs, gold, pred)
        result.per_label[stage] = per_label_f1(pred, gold, label_names)
        if thresholds is not None:
            result.metrics |= {f"{stage}/{name}_tuned": value for name, value in set_metrics(pred, gold).items()}
        if not multi_label:
            result.confusion[stage] = gold.long().T @ pred.long()
    return result
