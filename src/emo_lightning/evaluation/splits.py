"""After training: whole-split probabilities, thresholds tuned on validation, metrics at those thresholds.

The probabilities come from `inference.engine` (`predict_logits` → `to_probabilities`, the halves of
`predict_probabilities`), the label sets from `decide`: the same path as `EmotionPredictor`, so predictions/*.csv
hold what the exported model predicts (calibrated, where the run fits temperatures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from emo_lightning.inference.engine import Backend, decide, predict_logits, to_probabilities
from emo_lightning.models.calibration import calibrated_thresholds, expected_calibration_error, fit_temperatures
from emo_lightning.models.metrics import per_label_f1, set_metrics
from emo_lightning.models.thresholds import ThresholdTuner

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def gold_sets(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    if targets.ndim == 1:
        return torch.nn.functional.one_hot(targets.long(), num_labels).bool()
    return targets.bool()


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
    """What `evaluate_splits` found: the metrics of the decisions, per-label F1 and confusion counts per stage, the
    thresholds."""

    # multi-label: `<stage>/<metric>_tuned` at tuned thresholds, `<stage>/<metric>` at a fixed one; `<stage>/ece*`
    metrics: dict[str, float] = field(default_factory=dict)
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, torch.Tensor] = field(default_factory=dict)  # single-label: (true, predicted) counts
    thresholds: list[float] | None = None  # with temperatures: on the calibrated scale
    tuned: bool = False  # the thresholds were tuned on validation (False: the fixed one, e.g. thresholds=none)
    outputs: dict[str, SplitOutputs] = field(default_factory=dict)
    temperatures: list[float] | None = None  # fitted on validation (calibrate=True): 1 or one per label
    logits: dict[str, torch.Tensor] = field(default_factory=dict)  # per stage: uncalibrated, fp32
    targets: dict[str, torch.Tensor] = field(default_factory=dict)  # per stage: class ids or multi-hot rows


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
    calibrate: bool = False,
) -> Evaluation:
    """Probabilities of every split's `texts` (split name → texts, gold `labels` alike: class ids or multi-hot rows);
    thresholds from `tuner` on `validation` (never on test), then every split scored with them: `<stage>/<metric>_tuned`
    where the tuner tunes, `<stage>/<metric>` where it keeps its fixed threshold (`thresholds=none`: the figures of
    the saved decisions, its at_least_one rule included). No tuner: every label at `threshold`, no set metrics.

    `calibrate`: also fit temperatures on validation's logits (`models.calibration`), report `<stage>/ece` and
    `<stage>/ece_calibrated`, and keep calibrated probabilities, with the thresholds mapped to their scale (the
    same decisions), in the outputs: what the exported model predicts.
    """
    logits = {
        split: predict_logits(backend, tokenizer, list(split_texts), max_length, batch_size)
        for split, split_texts in texts.items()
    }
    targets = {split: torch.as_tensor(list(labels[split])) for split in texts}
    raw = {split: (to_probabilities(logits[split], multi_label), targets[split]) for split in texts}
    thresholds, at_least_one, suffix = None, False, None
    if multi_label and tuner is not None:
        thresholds, at_least_one = [round(float(t), 4) for t in tuner(*raw["validation"])], tuner.at_least_one
        suffix = "_tuned" if tuner.tunes else ""
    if not calibrate or not len(targets.get("validation", [])):
        result = score_splits(raw, label_names, multi_label, thresholds, at_least_one, threshold, suffix)
        return with_outputs(result, logits, targets)
    temperatures = fit_temperatures(logits["validation"], targets["validation"], multi_label)
    scale = torch.tensor(temperatures)
    calibrated = {split: (to_probabilities(logits[split], multi_label, scale), targets[split]) for split in texts}
    if multi_label:
        thresholds = calibrated_thresholds(thresholds or [threshold] * len(label_names), temperatures)
    result = score_splits(
        calibrated, label_names, multi_label, thresholds, at_least_one, threshold, suffix, temperatures
    )
    result.temperatures = temperatures
    for split in texts:
        stage = stage_of(split)
        result.metrics[f"{stage}/ece"] = expected_calibration_error(*raw[split], multi_label)
        result.metrics[f"{stage}/ece_calibrated"] = expected_calibration_error(*calibrated[split], multi_label)
    return with_outputs(result, logits, targets)


def with_outputs(result: Evaluation, logits: dict, targets: dict) -> Evaluation:
    """`result` holding every split's raw logits and targets by stage (what the untuned figures are scored on)."""
    result.logits = {stage_of(split): split_logits for split, split_logits in logits.items()}
    result.targets = {stage_of(split): split_targets for split, split_targets in targets.items()}
    return result


def score_splits(
    collected: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    label_names: list[str],
    multi_label: bool,
    thresholds: list[float] | None,
    at_least_one: bool,
    threshold: float,
    suffix: str | None = None,
    temperatures: list[float] | None = None,
) -> Evaluation:
    """Decide and score every split's (probabilities, targets) at `thresholds` (multi-label; None: `threshold`);
    the set metrics as `<stage>/<metric><suffix>` ("_tuned": at tuned thresholds, "": at a fixed one; None: none).
    `temperatures`: the calibration of the probabilities (None: uncalibrated), for the at_least_one rule."""
    result = Evaluation(thresholds=thresholds, tuned=suffix == "_tuned")
    for split, (probs, targets) in collected.items():
        stage = stage_of(split)
        gold = gold_sets(targets, len(label_names))
        cut = thresholds if thresholds is not None else threshold
        pred = decide(probs, multi_label, cut, at_least_one, temperatures)
        result.outputs[stage] = SplitOutputs(probs, gold, pred)
        result.per_label[stage] = per_label_f1(pred, gold, label_names)
        if suffix is not None:
            result.metrics |= {f"{stage}/{name}{suffix}": value for name, value in set_metrics(pred, gold).items()}
        if not multi_label:
            result.confusion[stage] = gold.long().T @ pred.long()
    return result
