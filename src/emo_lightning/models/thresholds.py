"""Decision thresholds for multi-label models, tuned on validation for the metric that is reported.

- `per_label`: each label's F1-optimal threshold (what macro-F1 rewards). Labels with fewer than
  `min_positives` validation positives keep the global threshold, and no threshold goes below `floor`,
  so rare labels don't collapse onto a threshold fitted to two examples.
- `global`: one threshold for all labels, maximizing micro-F1 or sample Jaccard (what those reward).

`at_least_one` gives a text with no label above its threshold its most probable label instead of none — for data
where (nearly) every text has an emotion; the global threshold is tuned with that rule applied. "Most probable" is by
the uncalibrated score (`fallback_labels`): per-label temperatures can reorder the labels, and calibration must not
change a decision.
"""

from __future__ import annotations

import torch

from emo_lightning.models.metrics import binary_f1, micro_f1, sample_jaccard
from emo_lightning.utils.errors import ConfigError

STRATEGIES = ("none", "global", "per_label")
GLOBAL_OBJECTIVES = ("f1_micro", "jaccard")


class ThresholdTuner:
    """Finds thresholds on (probabilities, multi-hot targets) of the validation split.

    Args:
        strategy: `per_label`, `global` or `none` (keep `default`).
        objective: what the global threshold maximizes: `f1_micro` or `jaccard` (also the fallback for
            labels with too few positives under `per_label`).
        floor: lowest threshold considered.
        min_positives: labels with fewer validation positives keep the global threshold (per_label).
        default: the threshold of `none`.
        at_least_one: a text with no label at or above threshold gets its most probable label.
    """

    def __init__(
        self,
        strategy: str = "per_label",
        objective: str = "f1_micro",
        floor: float = 0.05,
        min_positives: int = 5,
        default: float = 0.5,
        at_least_one: bool = False,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ConfigError(f"thresholds.strategy={strategy} is not known: use one of {', '.join(STRATEGIES)}")
        if objective not in GLOBAL_OBJECTIVES:
            raise ConfigError(f"thresholds.objective={objective} is not known: use {' or '.join(GLOBAL_OBJECTIVES)}")
        if not 0.0 < floor < 1.0:
            raise ConfigError(f"thresholds.floor={floor} must lie in (0, 1): e.g. 0.05")
        self.strategy, self.objective, self.floor = strategy, objective, floor
        self.min_positives, self.default, self.at_least_one = min_positives, default, at_least_one
        self.grid = torch.arange(round(floor * 100), 96, dtype=torch.float64) / 100  # floor … 0.95 by 0.01

    @property
    def tunes(self) -> bool:
        """Whether the thresholds are fitted to validation (`none`: every label keeps `default`)."""
        return self.strategy != "none"

    def __call__(self, probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Thresholds, shape (num_labels,)."""
        num_labels = probs.shape[1]
        if self.strategy == "none":
            return torch.full((num_labels,), self.default)
        gold = targets.bool()
        probs = probs.double()
        best_global = self.tune_global(probs, gold)
        if self.strategy == "global":
            return torch.full((num_labels,), best_global)
        return self.tune_per_label(probs, gold, best_global)

    def tune_global(self, probs: torch.Tensor, gold: torch.Tensor) -> float:
        score = micro_f1 if self.objective == "f1_micro" else sample_jaccard
        scores = torch.stack([score(binarize(probs, t, self.at_least_one), gold) for t in self.grid])
        return float(self.grid[int(scores.argmax())])  # argmax: the lowest of equally good thresholds

    def tune_per_label(self, probs: torch.Tensor, gold: torch.Tensor, fallback: float) -> torch.Tensor:
        # (grid, texts, labels) would be large for big splits: one grid point at a time.
        f1 = torch.stack([binary_f1(probs >= t, gold, dim=0) for t in self.grid])  # (grid, labels)
        thresholds = self.grid[f1.argmax(dim=0)].float()
        too_rare = gold.sum(dim=0) < self.min_positives
        thresholds[too_rare] = fallback
        return thresholds


def binarize(
    probs: torch.Tensor,
    thresholds: torch.Tensor | float,
    at_least_one: bool = False,
    temperatures: torch.Tensor | list[float] | None = None,
) -> torch.Tensor:
    """Predicted label sets: probability at or above the label's threshold; with `at_least_one`, a text with
    no such label gets its most probable one before calibration (`fallback_labels`; `temperatures`: those `probs`
    were calibrated with, None: uncalibrated)."""
    pred = probs >= torch.as_tensor(thresholds, dtype=probs.dtype)
    if at_least_one:
        top = torch.nn.functional.one_hot(fallback_labels(probs, temperatures), probs.shape[1]).bool()
        pred = torch.where(pred.any(dim=1, keepdim=True), pred, top)
    return pred


def fallback_labels(probs: torch.Tensor, temperatures: torch.Tensor | list[float] | None = None) -> torch.Tensor:
    """The at_least_one label of each text: the highest uncalibrated logit T · logit(p), where `probs` are sigmoids
    calibrated by per-label `temperatures` T (None: uncalibrated, plain argmax). The label the rule gave when the
    thresholds were tuned, before calibration: dividing each label's logit by its own T can reorder the labels
    (equal temperatures cannot)."""
    if temperatures is None or len(set(torch.as_tensor(temperatures).tolist())) <= 1:
        return probs.argmax(dim=1)
    scale = torch.as_tensor(temperatures, dtype=torch.float64)
    return (torch.logit(probs.double()) * scale).argmax(dim=1)  # p = 0 or 1: ±inf, still in order
