"""Threshold tuning on hand-made cases whose optimum is known, and the metrics computed at thresholds."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from emo_lightning.models.calibration import calibrated_thresholds
from emo_lightning.models.metrics import set_metrics
from emo_lightning.models.thresholds import ThresholdTuner, binarize
from emo_lightning.train import train
from emo_lightning.training.finish import fixed_note
from emo_lightning.utils.errors import ConfigError


def separable_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Label 0's positives score 0.60-0.69 and negatives ≤ 0.30: any threshold in (0.30, 0.60] is perfect.
    Label 1's positives score 0.20-0.29, negatives ≤ 0.10: perfect in (0.10, 0.20]."""
    pos0 = torch.linspace(0.60, 0.69, 10)
    neg0 = torch.linspace(0.00, 0.30, 30)
    pos1 = torch.linspace(0.20, 0.29, 10)
    neg1 = torch.linspace(0.00, 0.10, 30)
    probs = torch.stack([torch.cat([pos0, neg0]), torch.cat([pos1, neg1])], dim=1)
    targets = torch.stack([torch.cat([torch.ones(10), torch.zeros(30)])] * 2, dim=1)
    return probs, targets


def test_per_label_finds_each_labels_perfect_threshold():
    probs, targets = separable_case()
    thresholds = ThresholdTuner("per_label", floor=0.05)(probs, targets)
    assert 0.30 < thresholds[0] <= 0.60 and 0.10 < thresholds[1] <= 0.20
    pred = binarize(probs, thresholds)
    assert torch.equal(pred, targets.bool())
    assert set_metrics(pred, targets.bool())["f1_macro"] == 1.0


def test_global_finds_the_best_single_threshold():
    probs, targets = separable_case()
    # One threshold can't separate both labels. At 0.20 label 1 is perfect and label 0 keeps its 10 positives
    # plus the 10 negatives ≥ 0.20: micro-F1 40/50 = 0.8, the best of the grid (worked out by hand).
    tuner = ThresholdTuner("global", objective="f1_micro")
    thresholds = tuner(probs, targets)
    assert torch.all(thresholds == thresholds[0])
    best = max(set_metrics(binarize(probs, t / 100), targets.bool())["f1_micro"] for t in range(5, 96))
    assert set_metrics(binarize(probs, thresholds), targets.bool())["f1_micro"] == pytest.approx(best)
    assert float(thresholds[0]) == pytest.approx(0.20) and best == pytest.approx(0.8)


def test_global_jaccard_objective_on_a_known_case():
    # Two texts, three labels. Threshold 0.5 predicts {0} and {1}: Jaccard (1/2 + 1) / 2 = 0.75;
    # threshold 0.3 predicts {0, 2} and {1}: (1 + 1) / 2 = 1.0 — the optimum lies in (0.2, 0.4].
    probs = torch.tensor([[0.9, 0.1, 0.4], [0.2, 0.8, 0.1]])
    targets = torch.tensor([[1, 0, 1], [0, 1, 0]])
    threshold = float(ThresholdTuner("global", objective="jaccard")(probs, targets)[0])
    assert 0.20 < threshold <= 0.40
    assert set_metrics(binarize(probs, threshold), targets.bool())["jaccard"] == 1.0


def test_at_least_one_gives_an_empty_text_its_top_label_and_moves_the_jaccard_optimum():
    # Text 2 has gold {1} but scores only 0.3 for it. Without the rule (worked out by hand): thresholds in
    # (0.3, 0.9] leave text 2 empty, Jaccard (1 + 0) / 2 = 0.5; (0.2, 0.3] also give text 1 label 1,
    # (1/2 + 1) / 2 = 0.75, the optimum. With the rule text 2 gets its top label (1) whenever it is empty:
    # (0.3, 0.9] gives (1 + 1) / 2 = 1.0.
    probs = torch.tensor([[0.9, 0.3, 0.1], [0.1, 0.3, 0.2]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0]])
    assert binarize(probs, 0.5, at_least_one=True).tolist() == [[True, False, False], [False, True, False]]
    assert binarize(probs, 0.5).tolist() == [[True, False, False], [False, False, False]]
    plain = float(ThresholdTuner("global", objective="jaccard")(probs, targets)[0])
    ruled = float(ThresholdTuner("global", objective="jaccard", at_least_one=True)(probs, targets)[0])
    assert 0.20 < plain <= 0.30
    assert set_metrics(binarize(probs, plain), targets.bool())["jaccard"] == pytest.approx(0.75)
    assert 0.30 < ruled <= 0.90
    assert set_metrics(binarize(probs, ruled, at_least_one=True), targets.bool())["jaccard"] == 1.0


def test_rare_labels_keep_the_global_threshold_and_the_floor_holds():
    probs, targets = separable_case()
    targets[:, 1] = 0
    targets[0, 1] = 1  # label 1: one validation positive only
    probs[0, 1] = 0.01  # ... scored below every floor: per-label tuning alone would pick the floor
    tuner = ThresholdTuner("per_label", floor=0.05, min_positives=5)
    thresholds = tuner(probs, targets)
    assert thresholds[1] == pytest.approx(tuner.tune_global(probs.double(), targets.bool()))
    assert thresholds.min() >= 0.05


def test_none_keeps_the_default():
    probs, targets = separable_case()
    assert torch.equal(ThresholdTuner("none", default=0.4)(probs, targets), torch.full((2,), 0.4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "per_class"}, "thresholds.strategy=per_class is not known"),
        ({"objective": "f1_macro"}, "thresholds.objective=f1_macro is not known"),
        ({"floor": 0.0}, "thresholds.floor=0.0 must lie in"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ThresholdTuner(**kwargs)


def test_set_metrics_match_torchmetrics():
    from torchmetrics.functional.classification import multilabel_exact_match, multilabel_f1_score

    torch.manual_seed(0)
    probs, targets = torch.rand(50, 4), (torch.rand(50, 4) > 0.6).int()
    ours = set_metrics(binarize(probs, 0.5), targets.bool())
    assert ours["f1_micro"] == pytest.approx(float(multilabel_f1_score(probs, targets, 4, average="micro")))
    assert ours["f1_macro"] == pytest.approx(float(multilabel_f1_score(probs, targets, 4, average="macro")))
    assert ours["exact_match"] == pytest.approx(float(multilabel_exact_match(probs, targets, 4)))


def label_sets(rows: list[dict], column: str, names: list[str]) -> torch.Tensor:
    return torch.tensor([[name in row[column].split(",") for name in names] for row in rows])


@pytest.mark.parametrize("at_least_one", [False, True])
def test_thresholds_none_names_its_figures_untuned(tiny_cfg, tmp_path, at_least_one):
    """thresholds=none (at 0.9: some texts have no label there) tunes nothing: no `*_tuned` figures, no `tuned_on`,
    no claim of tuning in the notes, the logs or the model card; the plain figures score the saved decisions (the
    at_least_one rule included)."""
    overrides = ["data=sem_eval_2018", "thresholds=none", "threshold=0.9", f"thresholds.at_least_one={at_least_one}"]
    train(tiny_cfg(*overrides, "logger=csv", "trainer.max_steps=3"))
    record = json.loads((tmp_path / "metrics.json").read_text())
    metrics, names = record["metrics"], list(record["thresholds"])
    assert not [key for key in metrics if key.endswith("_tuned")] and record["tuned_on"] is None
    fixed = calibrated_thresholds([0.9] * len(names), record["temperatures"])
    assert list(record["thresholds"].values()) == pytest.approx(fixed)  # the fixed threshold, calibrated
    assert fixed_note(0.9, at_least_one, calibrated=True) in record["notes"]
    assert not any("tuned" in note for note in record["notes"] if not note.startswith("thresholds=none"))
    with (tmp_path / "predictions" / "val.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    pred, gold = label_sets(rows, "predicted", names), label_sets(rows, "gold", names)
    probs = torch.tensor([[float(row[f"prob_{name}"]) for name in names] for row in rows])
    empty = ~(probs >= torch.tensor(fixed)).any(dim=1)  # texts with no label at the threshold
    assert empty.any(), "the case must hold texts the at_least_one rule decides"
    assert bool(pred[empty].any(dim=1).all()) == at_least_one
    for name, value in set_metrics(pred, gold).items():  # the figures are those of the saved decisions
        assert metrics[f"val/{name}"] == pytest.approx(value), name
    logged = next((tmp_path / "csv").rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert "val/f1_macro" in logged and not [column for column in logged if column.endswith("_tuned")]
    card = (tmp_path / "model" / "README.md").read_text()
    assert "(a fixed threshold: none was tuned)" in card and "tuned on validation" not in card
    assert ("gets its most probable one" in card) == at_least_one
