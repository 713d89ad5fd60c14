"""A model folder's probabilities on a labelled split, scored under the names a run's metrics.json uses: the
evaluation loop's figures (accuracy / F1 / AUROC from the uncalibrated probabilities at 0.5), the decisions at the
saved thresholds (`*_tuned` where the run tuned them) and the calibration errors. `evaluate.py` and
`analyze.py task=errors` score with it."""

from __future__ import annotations

import torch

from emo_lightning.evaluation.splits import Evaluation, score_splits, stage_of
from emo_lightning.models.calibration import expected_calibration_error, uncalibrated
from emo_lightning.models.loop_metrics import build_metrics


def score_probabilities(
    split: str,
    probs: torch.Tensor,
    targets: torch.Tensor,
    label_names: list[str],
    multi_label: bool,
    thresholds: list[float] | None,
    at_least_one: bool,
    temperatures: list[float] | None,
    tuned: bool,
) -> Evaluation:
    """Score one split's calibrated `probs` (what `EmotionPredictor.predict_proba` gives) against `targets` (class
    ids or multi-hot rows) as the run's final evaluation did: `<stage>/<metric>` from the uncalibrated probabilities
    at 0.5, `<stage>/<metric>_tuned` at `thresholds` when they were `tuned` (else those replace the plain names, as
    in a run with thresholds=none), `<stage>/ece` (and `ece_calibrated` with temperatures)."""
    stage = stage_of(split)
    raw = uncalibrated(probs, temperatures, multi_label).float() if temperatures else probs.float()
    loop = build_metrics(len(label_names), multi_label, 0.5, sync_on_compute=False).clone(prefix=f"{stage}/")
    loop.update(raw, targets.int())
    metrics = {name: float(value) for name, value in loop.compute().items()}
    suffix = ("_tuned" if tuned else "") if multi_label else None
    cut = thresholds if multi_label else None
    evaluation = score_splits(
        {split: (probs, targets)}, label_names, multi_label, cut, at_least_one, 0.5, suffix, temperatures
    )
    evaluation.metrics = metrics | evaluation.metrics
    if temperatures:
        evaluation.metrics[f"{stage}/ece_calibrated"] = expected_calibration_error(probs, targets, multi_label)
    evaluation.metrics[f"{stage}/ece"] = expected_calibration_error(raw, targets, multi_label)
    evaluation.temperatures, evaluation.tuned = temperatures, tuned and multi_label
    return evaluation
