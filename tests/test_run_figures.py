"""Figures and the error table after every training run: PR curves, reliability diagrams, errors.csv, and what
TensorBoard and W&B receive of them."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from emo_lightning.analysis.run_figures import plot_pr_curves, plot_reliability, reliability_points
from emo_lightning.evaluation.error_rows import ERROR_COLUMNS, error_rows, write_errors
from emo_lightning.evaluation.splits import SplitOutputs
from emo_lightning.train import train
from tests.helpers import wandb_logged_keys

NAMES = ["joy", "anger", "fear"]


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_pr_curves_png_marks_every_label_even_one_without_positives(tmp_path):
    generator = torch.Generator().manual_seed(0)
    gold = torch.rand(40, 3, generator=generator) > 0.6
    gold[:, 2] = False  # no positives: titled so, no curve
    probs = (gold.float() * 0.5 + torch.rand(40, 3, generator=generator) * 0.5).clamp(0, 1)
    path = tmp_path / "pr.png"
    plot_pr_curves(probs, gold, probs >= 0.5, NAMES, path, "val: precision-recall", thresholds=[0.5, 0.4, 0.3])
    assert is_png(path)


@pytest.mark.parametrize("log_counts", [False, True])
def test_reliability_png(tmp_path, log_counts):
    confidence = torch.linspace(0.05, 0.95, 30).tolist()
    path = tmp_path / "reliability.png"
    curves = {"calibrated": (confidence, [c > 0.5 for c in confidence]), "uncalibrated": (confidence, [True] * 30)}
    plot_reliability(curves, 15, path, "val: reliability", "confidence", "accuracy", log_counts)
    assert is_png(path)


def test_reliability_points_bin_confidences_and_weigh_the_ece_by_counts():
    mean_confidence, accuracy, counts, ece = reliability_points([0.1, 0.15, 0.9, 0.95], [0, 1, 1, 1], bins=2)
    assert counts.tolist() == [2, 2]
    assert mean_confidence.tolist() == pytest.approx([0.125, 0.925])
    assert accuracy.tolist() == [0.5, 1.0]
    assert ece == pytest.approx((2 * 0.375 + 2 * 0.075) / 4)


def test_single_label_error_rows_lose_minus_log_p_gold_highest_first(tmp_path):
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]])
    gold = torch.nn.functional.one_hot(torch.tensor([0, 0, 1]), 3).bool()
    outputs = {"val": SplitOutputs(probs, gold, torch.nn.functional.one_hot(probs.argmax(1), 3).bool())}
    rows = error_rows({"validation": ["a", "b", "c"]}, outputs, NAMES, multi_label=False)
    assert [list(row) for row in rows] == [ERROR_COLUMNS] * 3
    assert [row["text"] for row in rows] == ["b", "a", "c"]
    assert [row["loss"] for row in rows] == pytest.approx([-math.log(0.1), -math.log(0.7), -math.log(1 - 1e-7)])
    assert rows[0] == {"split": "val", "text": "b", "gold": "joy", "predicted": "fear", "loss": rows[0]["loss"],
                       "correct": False}  # fmt: skip
    write_errors(tmp_path / "errors.csv", rows)
    with open(tmp_path / "errors.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [row["text"] for row in read] == ["b", "a", "c"] and read[0]["correct"] == "False"


def test_multi_label_error_rows_lose_mean_binary_cross_entropy_with_clamped_probabilities():
    probs = torch.tensor([[0.9, 0.2, 0.0], [0.5, 0.5, 0.5]])
    gold = torch.tensor([[True, False, True], [False, False, False]])
    outputs = {"test": SplitOutputs(probs, gold, probs >= 0.5)}
    rows = error_rows({"test": ["x", "y"]}, outputs, NAMES, multi_label=True)
    first = (-math.log(0.9) - math.log(0.8) - math.log(1e-7)) / 3  # p = 0 for a gold label: clamped to 1e-7
    assert [row["text"] for row in rows] == ["x", "y"]
    assert [row["loss"] for row in rows] == pytest.approx([first, math.log(2)], abs=1e-6)
    assert rows[0]["gold"] == "joy,fear" and rows[0]["predicted"] == "joy" and rows[0]["correct"] is False
    assert rows[1]["predicted"] == "joy,anger,fear" and rows[1]["gold"] == ""


def read_errors(run_dir) -> list[dict]:
    with open(run_dir / "errors.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_single_label_run_sends_figures_and_errors_to_tensorboard(tiny_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_cfg("logger=tensorboard", "plots=default"))
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    expected = ["confusion_val.png", "curves.png", "reliability_test.png", "reliability_val.png"]
    assert set(expected) <= set(plots) and all(is_png(tmp_path / "plots" / name) for name in plots)
    events = next((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    tags = EventAccumulator(str(events.parent)).Reload().Tags()
    assert {f"plots/{name.removesuffix('.png')}" for name in plots} <= set(tags["images"])
    assert "errors/text_summary" in tags["tensors"]
    rows = read_errors(tmp_path)
    losses = [float(row["loss"]) for row in rows]
    assert losses == sorted(losses, reverse=True) and {row["split"] for row in rows} == {"val", "test"}
    predictions = sum(1 for _ in open(tmp_path / "predictions" / "val.csv")) - 1  # noqa: SIM115
    assert sum(row["split"] == "val" for row in rows) == predictions


def test_single_label_run_without_plots_still_writes_errors(tiny_cfg, tmp_path):
    train(tiny_cfg("logger=none", "plots=none"))
    assert not (tmp_path / "plots").exists()
    rows = read_errors(tmp_path)
    assert rows and list(rows[0]) == ERROR_COLUMNS
    assert all(row["correct"] == str(row["gold"] == row["predicted"]) for row in rows)  # one label each


def test_multi_label_run_sends_pr_curves_reliability_and_errors_table_to_wandb(tiny_cfg, tmp_path):
    train(tiny_cfg("data=go_emotions", "logger=wandb", "plots=default"))
    figures = ["pr_curves_test", "pr_curves_val", "reliability_test", "reliability_val"]
    assert all(is_png(tmp_path / "plots" / f"{name}.png") for name in figures)
    offline = next((tmp_path / "wandb").glob("offline-run-*"))
    logged = wandb_logged_keys(next(offline.glob("run-*.wandb")))
    assert {f"plots/{name}/_type" for name in figures} | {"errors/_type"} <= logged
    tables = list((offline / "files" / "media" / "table").glob("errors_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ERROR_COLUMNS
    losses = [row[ERROR_COLUMNS.index("loss")] for row in table["data"]]
    assert losses and losses == sorted(losses, reverse=True) and len(losses) <= 200
    images = [p.name for p in (offline / "files" / "media" / "images" / "plots").glob("*.png")]
    assert all(any(image.startswith(f"{name}_") for image in images) for name in figures)
