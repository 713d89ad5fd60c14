"""Temperature scaling: fitted on validation logits, decisions kept, folded into the saved head, applied everywhere."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch.nn import functional as F
from transformers import pipeline

from emo_lightning.data.loading import load_tokenizer
from emo_lightning.inference.engine import TorchBackend, decide, predict_logits, to_probabilities
from emo_lightning.inference.onnx_export import export_run
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.models.calibration import (
    MIN_EXAMPLES,
    T_MIN,
    calibrated_thresholds,
    expected_calibration_error,
    fit_temperatures,
    folded_head_weights,
)
from emo_lightning.models.folder import ClassifierSpec, load_model_dir, read_spec, save_model_dir
from emo_lightning.models.thresholds import fallback_labels
from emo_lightning.train import train
from emo_lightning.utils.errors import ConfigError
from tests.test_model_folder import LABELS, TEXTS, build_network


def overconfident_logits(rows: int = 400, labels: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a 70%-accurate classifier that speaks with ~99% confidence: the argmax is right 7 times in 10."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(labels, (rows,), generator=generator)
    wrong = torch.rand(rows, generator=generator) < 0.3
    top = torch.where(wrong, (targets + 1) % labels, targets)
    logits = torch.randn(rows, labels, generator=generator)
    logits[torch.arange(rows), top] += 8.0
    return logits, targets


def test_one_temperature_lowers_the_nll_and_keeps_the_argmax():
    logits, targets = overconfident_logits()
    (temperature,) = fit_temperatures(logits, targets, multi_label=False)
    assert temperature > 2.0  # over-confident: scaling must soften
    before, after = F.cross_entropy(logits, targets), F.cross_entropy(logits / temperature, targets)
    assert after < 0.7 * before
    for nearby in (temperature * 0.9, temperature * 1.1):  # a minimum, not just an improvement
        assert F.cross_entropy(logits / nearby, targets) > after
    calibrated = to_probabilities(logits, False, torch.tensor([temperature]))
    assert torch.equal(calibrated.argmax(1), logits.argmax(1))
    ece_before = expected_calibration_error(to_probabilities(logits, False), targets, False)
    ece_after = expected_calibration_error(calibrated, targets, False)
    assert ece_after < 0.5 * ece_before


def test_per_label_temperatures_keep_every_multi_label_decision():
    generator = torch.Generator().manual_seed(1)
    targets = torch.rand(500, 3, generator=generator) < torch.tensor([0.5, 0.3, 0.1])
    scale = torch.tensor([6.0, 1.0, 0.2])  # over-confident, about right, under-confident
    logits = (targets.float() * 2 - 1 + torch.randn(500, 3, generator=generator) * 1.2) * scale
    temperatures = fit_temperatures(logits, targets.float(), multi_label=True)
    assert temperatures[0] > 2.0 and temperatures[2] < 0.5  # one per label, each its own
    thresholds = [0.3, 0.5, 0.8]
    before = decide(to_probabilities(logits, True), True, torch.tensor(thresholds))
    calibrated = to_probabilities(logits, True, torch.tensor(temperatures))
    after = decide(calibrated, True, torch.tensor(calibrated_thresholds(thresholds, temperatures)))
    assert torch.equal(before, after) and before.any() and not before.all()
    nll = [
        F.binary_cross_entropy_with_logits(logits / t, targets.float())
        for t in (torch.ones(3), torch.tensor(temperatures))
    ]
    assert nll[1] < nll[0]


def test_at_least_one_picks_the_same_label_before_and_after_per_label_temperatures():
    """Text 0 reaches no threshold; label 0 has the higher logit (1.0 vs 0.8), but T = (4, 0.5) puts label 1 first
    among the calibrated probabilities (0.56 vs 0.83). The rule must still give label 0: the tuned decision."""
    logits = torch.tensor([[1.0, 0.8], [3.0, -1.0]])  # text 1: label 0 passes its threshold, no fallback
    thresholds, temperatures = [0.9, 0.9], [4.0, 0.5]
    raw = to_probabilities(logits, True)
    calibrated = to_probabilities(logits, True, torch.tensor(temperatures))
    assert raw[0].argmax() == 0 and calibrated[0].argmax() == 1  # the order flips
    before = decide(raw, True, torch.tensor(thresholds), at_least_one=True)
    cut = torch.tensor(calibrated_thresholds(thresholds, temperatures))
    after = decide(calibrated, True, cut, at_least_one=True, temperatures=temperatures)
    assert before.tolist() == [[True, False], [True, False]] and torch.equal(before, after)
    assert torch.equal(fallback_labels(calibrated, temperatures), fallback_labels(raw))
    assert torch.equal(fallback_labels(calibrated, [2.0, 2.0]), calibrated.argmax(1))  # equal temperatures: argmax


@pytest.mark.parametrize(("head", "pooling"), [("linear", "pooler"), ("label_prompt", "mean")])
def test_predictor_decisions_are_the_same_with_and_without_calibration(tmp_path, tiny_models, head, pooling):
    """at_least_one on texts that reach no threshold, with temperatures that reorder their labels: the calibrated
    folder (folded, or applied by the engine) decides exactly what the uncalibrated one does."""
    network, record = build_network("bert", tiny_models, head, pooling)
    tokenizer = load_tokenizer(str(tiny_models["bert"]), None)
    bias = network.head.classifier.bias if head == "linear" else network.head.label_bias
    with torch.no_grad():  # every logit of the first text below -1: none reaches 0.5, the rule decides it
        bias -= predict_logits(TorchBackend(network), tokenizer, TEXTS, 32)[0].max() + 1
    logits = predict_logits(TorchBackend(network), tokenizer, TEXTS, 32)
    top = int(logits[0].argmax())
    temperatures = [T_MIN if i == top else 20.0 for i in range(len(LABELS))]  # the top one falls furthest
    thresholds = [0.5] * len(LABELS)
    plain = ClassifierSpec(LABELS, True, 0.5, 32, record, thresholds=thresholds, at_least_one=True)
    calibrated = ClassifierSpec(
        LABELS,
        True,
        0.5,
        32,
        record,
        thresholds=calibrated_thresholds(thresholds, temperatures),
        at_least_one=True,
        temperatures=temperatures,
    )
    save_model_dir(tmp_path / "plain", network, tokenizer, plain)
    save_model_dir(tmp_path / "calibrated", network, tokenizer, calibrated)
    before = EmotionPredictor(tmp_path / "plain", precision="fp32", backend="torch")
    after = EmotionPredictor(tmp_path / "calibrated", precision="fp32", backend="torch")
    assert read_spec(tmp_path / "calibrated").temperatures_folded is (head == "linear")
    probs = after.predict_proba(TEXTS)
    assert int(probs[0].argmax()) != top and int(before.predict_proba(TEXTS)[0].argmax()) == top  # reordered
    decided = [p.labels for p in before.predict(TEXTS)]
    assert decided[0] == [LABELS[top]] and [p.labels for p in after.predict(TEXTS)] == decided


def test_labels_with_too_few_positives_keep_temperature_one_and_the_rest_stay_in_bounds():
    logits = torch.randn(50, 3, generator=torch.Generator().manual_seed(2)) * 5
    targets = torch.stack([torch.zeros(50), (logits[:, 1] > 9).float(), (logits[:, 2] > 0).float()], dim=1)
    assert 0 < targets[:, 1].sum() < MIN_EXAMPLES
    none, few, separable = fit_temperatures(logits, targets, multi_label=True)
    assert none == 1.0 and few == 1.0
    assert separable == pytest.approx(T_MIN, abs=1e-3)  # perfectly separated: the NLL falls toward T = 0


@pytest.mark.parametrize(("head", "multi_label"), [("linear", False), ("linear", True), ("mlp", True)])
def test_folded_head_gives_logits_divided_by_the_temperatures(tiny_models, head, multi_label):
    network, _ = build_network("bert", tiny_models, head, pooling="mean")
    temperatures = [1.5, 0.5, 2.0, 3.0] if multi_label else [2.5]
    batch = load_tokenizer(str(tiny_models["bert"]), None)(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        plain = network(batch["input_ids"], batch["attention_mask"])
        network.head.load_state_dict(folded_head_weights(network.head, temperatures))
        folded = network(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(folded, plain / torch.tensor(temperatures), atol=1e-5)


def save_calibrated(path, tiny_models, head: str, temperatures: list[float], pooling: str = "pooler"):
    network, record = build_network("bert", tiny_models, head, pooling)
    spec = ClassifierSpec(LABELS, True, 0.5, 32, record, thresholds=[0.3, 0.4, 0.5, 0.6], temperatures=temperatures)
    save_model_dir(path, network, load_tokenizer(str(tiny_models["bert"]), None), spec)
    return network


@pytest.mark.parametrize(("head", "pooling", "folded"), [("linear", "pooler", True), ("label_prompt", "mean", False)])
def test_predictor_applies_the_saved_temperatures(tmp_path, tiny_models, head, pooling, folded):
    temperatures = [2.0, 0.5, 1.0, 4.0]
    network = save_calibrated(tmp_path / "model", tiny_models, head, temperatures, pooling)
    spec = read_spec(tmp_path / "model")
    assert spec.temperatures == temperatures and spec.temperatures_folded is folded
    tokenizer = load_tokenizer(str(tiny_models["bert"]), None)
    logits = predict_logits(TorchBackend(network), tokenizer, TEXTS, 32)  # the network as trained, unfolded
    calibrated = EmotionPredictor(tmp_path / "model", precision="fp32", backend="torch").predict_proba(TEXTS)
    assert not torch.allclose(torch.sigmoid(logits), calibrated, atol=1e-3)
    assert torch.allclose(calibrated, torch.sigmoid(logits / torch.tensor(temperatures)), atol=1e-5)


def test_a_folder_without_temperatures_still_loads(tmp_path, tiny_models):
    save_calibrated(tmp_path / "model", tiny_models, "linear", [2.0, 0.5, 1.0, 4.0])
    spec_file = tmp_path / "model" / "classifier.json"
    record = json.loads(spec_file.read_text())
    for key in ("temperatures", "temperatures_folded"):
        del record[key]
    spec_file.write_text(json.dumps(record))
    _, _, spec = load_model_dir(tmp_path / "model")
    assert spec.temperatures is None and spec.engine_temperatures() is None


def test_bad_temperatures_in_a_folder_are_one_line(tmp_path, tiny_models):
    save_calibrated(tmp_path / "model", tiny_models, "linear", [2.0, 0.5, 1.0, 4.0])
    spec_file = tmp_path / "model" / "classifier.json"
    record = json.loads(spec_file.read_text())
    record["temperatures"] = [2.0, -1.0]
    spec_file.write_text(json.dumps(record))
    with pytest.raises(ConfigError) as info:
        read_spec(tmp_path / "model")
    assert str(info.value) == (
        f"{spec_file} gives temperatures [2.0, -1.0], not 4 positive numbers: re-export the model with train.py"
    )


@pytest.mark.parametrize("data", ["emotion", "go_emotions"])
def test_training_saves_temperatures_and_reports_ece(tiny_cfg, tmp_path, data):
    cfg = tiny_cfg(f"data={data}", "logger=none", "callbacks=none", "plots=none")
    train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    spec = json.loads((tmp_path / "model" / "classifier.json").read_text())
    multi_label = data == "go_emotions"
    assert len(record["temperatures"]) == (28 if multi_label else 1)
    assert spec["temperatures"] == record["temperatures"] and spec["temperatures_folded"]
    thresholds = record["thresholds"]  # keyed by label name (None for single-label data)
    assert spec["thresholds"] == (list(thresholds.values()) if thresholds else thresholds)
    for key in ("val/ece", "val/ece_calibrated", "test/ece", "test/ece_calibrated"):
        assert 0.0 <= record["metrics"][key] <= 1.0
    # the calibrated figures are what the model folder predicts: predictions/val.csv against the predictor
    with (tmp_path / "predictions" / "val.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    predictor = EmotionPredictor.from_run(tmp_path, precision="fp32", backend="torch")
    names = predictor.spec.label_names
    texts = [row["text"] for row in rows]
    saved = torch.tensor([[float(row[f"prob_{name}"]) for name in names] for row in rows])
    assert torch.allclose(predictor.predict_proba(texts), saved, atol=1e-4)
    decided = [set(p.labels) for p in predictor.predict(texts)]
    assert decided == [set(filter(None, row["predicted"].split(","))) for row in rows]


@pytest.mark.parametrize(("head", "pooling"), [("linear", "pooler"), ("label_prompt", "mean")])
def test_onnx_export_predicts_the_calibrated_probabilities(tmp_path, tiny_models, head, pooling):
    """Folded (linear) or applied by the engine (label_prompt): the ONNX folder gives what PyTorch gives."""
    temperatures = [2.0, 0.5, 1.0, 4.0]
    save_calibrated(tmp_path / "model", tiny_models, head, temperatures, pooling)
    report = export_run(tmp_path, "onnx", optimize=False, parity_texts=TEXTS, measure_speed=False)
    assert report["passed"]
    torch_probs = EmotionPredictor(tmp_path / "model", precision="fp32", backend="torch").predict_proba(TEXTS)
    onnx_probs = EmotionPredictor(tmp_path / "model", backend="onnx").predict_proba(TEXTS)
    assert (onnx_probs - torch_probs).abs().max() <= 1e-4


def test_pipeline_gives_the_calibrated_probabilities(tmp_path, tiny_models):
    save_calibrated(tmp_path / "model", tiny_models, "linear", [2.0, 0.5, 1.0, 4.0])
    ours = EmotionPredictor(tmp_path / "model", precision="fp32", backend="torch").predict_proba(TEXTS)
    answers = pipeline("text-classification", model=str(tmp_path / "model"), top_k=None, device="cpu")(TEXTS)
    theirs = torch.tensor([[{a["label"]: a["score"] for a in answer}[name] for name in LABELS] for answer in answers])
    assert torch.allclose(theirs, ours, atol=1e-4)
