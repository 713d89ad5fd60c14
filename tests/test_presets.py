"""Experiment presets and per-backbone defaults: each composes as documented and runs one step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emo_lightning.train import train
from emo_lightning.utils.config import validate_config
from tests.conftest import CONF, compose_train
from tests.runs import refusal

PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
FAMILY = {"squeezebert": "squeezebert", "distilbert": "distilbert", "bert_base": "bert", "minilm": "bert"}


def backbone_of(preset: str) -> str:
    return next(key for key in FAMILY if key in preset)


def test_every_seed_recipe_and_minilm_preset_is_there():
    expected = {
        "go_emotions_squeezebert_tez",
        "emotion_distilbert_book",
        "emotion_bert_base_notebook",
        "sem_eval_2018_bert_base_notebook",
        "emotion_minilm",
        "go_emotions_minilm",
        "sem_eval_2018_minilm",
    }
    assert expected <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_one_fast_dev_run_step(preset, tiny_cfg, tmp_path):
    cfg = tiny_cfg(f"experiment={preset}", "debug=fdr", "logger=none", family=FAMILY[backbone_of(preset)])
    validate_config(cfg)
    metrics = train(cfg)
    assert metrics and (Path(cfg.paths.output_dir) / "model" / "classifier.json").is_file()


def test_seed_recipes_say_what_they_say():
    tez = compose_train(["experiment=go_emotions_squeezebert_tez"])
    assert tez.data.max_length == 35 and tez.loss._target_.endswith("BCELoss") and tez.trainer.max_epochs == 8
    assert tez.callbacks.model_checkpoint.monitor == "val/auroc_micro" and "early_stopping" in tez.callbacks
    book = compose_train(["experiment=emotion_distilbert_book"])
    assert (book.data.batch_size, book.optimizer.lr, book.optimizer.weight_decay, book.trainer.max_epochs) == (
        64,
        2e-5,
        0.01,
        2,
    )
    notebook = compose_train(["experiment=sem_eval_2018_bert_base_notebook"])
    assert (notebook.data.batch_size, notebook.optimizer.lr, notebook.trainer.max_epochs) == (8, 2e-5, 5)
    assert notebook.callbacks.model_checkpoint.monitor == "val/f1_micro" and notebook.thresholds.strategy == "none"


@pytest.mark.parametrize(
    ("model", "pooling", "lr"),
    [("minilm", "mean", 1e-4), ("bert_base", "cls", 3e-5), ("roberta_base", "cls", 2e-5), ("distilbert", "cls", 5e-5)],
)
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_pooling_and_lr_follow_the_model(model, pooling, lr, head):
    cfg = compose_train([f"model={model}", f"head={head}"])
    assert cfg.head.pooling == pooling and cfg.optimizer.lr == lr


def test_explicit_pooling_and_lr_win_over_the_models():
    cfg = compose_train(["model=minilm", "head.pooling=cls", "optimizer.lr=3e-5"])
    assert cfg.head.pooling == "cls" and cfg.optimizer.lr == 3e-5


def test_unknown_monitor_is_refused_before_training(tiny_cfg, tmp_path):
    cfg = tiny_cfg("data=go_emotions", "callbacks.model_checkpoint.monitor=val/f1_mikro")
    error = refusal(cfg, tmp_path)
    assert "monitors val/f1_mikro" in error and "val/f1_micro" in error


def test_thresholds_are_saved_and_used_by_predict(tiny_cfg, tmp_path):
    cfg = tiny_cfg("data=go_emotions", "thresholds=per_label", "logger=none")
    train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    spec = json.loads((tmp_path / "model" / "classifier.json").read_text())
    assert dict(zip(spec["label_names"], spec["thresholds"])) == record["thresholds"] and len(spec["thresholds"]) == 28
    for key in ("val/f1_macro_tuned", "test/f1_macro_tuned", "test/jaccard_tuned", "test/f1_micro", "test/f1_macro"):
        assert key in record["metrics"]
    assert set(record["per_label_f1"]["test"]) == set(spec["label_names"])


def test_at_least_one_is_saved_and_predict_falls_back_to_the_top_label(tiny_cfg, tmp_path):
    import torch

    from emo_lightning.inference.predictor import EmotionPredictor

    cfg = tiny_cfg("data=sem_eval_2018", "thresholds=global", "thresholds.at_least_one=true", "logger=none")
    train(cfg)
    spec_file = tmp_path / "model" / "classifier.json"
    spec = json.loads(spec_file.read_text())
    assert spec["at_least_one"] is True
    spec["thresholds"] = [1.01] * len(spec["label_names"])  # no label can pass: only the rule decides
    spec_file.write_text(json.dumps(spec))
    texts = ["so angry right now", "what a lovely day"]
    predictor = EmotionPredictor.from_run(tmp_path)
    # the top label before calibration: per-label temperatures may rank the calibrated scores otherwise
    uncalibrated = predictor.predict_proba(texts).double().logit() * torch.tensor(spec.get("temperatures") or 1.0)
    expected = [[spec["label_names"][i]] for i in uncalibrated.argmax(dim=1).tolist()]
    assert [prediction.labels for prediction in predictor.predict(texts)] == expected
    spec["at_least_one"] = False
    spec_file.write_text(json.dumps(spec))
    assert all(p.labels == [] for p in EmotionPredictor.from_run(tmp_path).predict(texts))


def test_label_prompt_head_trains_and_its_model_folder_reproduces_validation(tiny_cfg, tiny_mirror, tmp_path):
    """The exported folder alone (prompt ids included) gives the validation Jaccard the run measured."""
    import torch
    from datasets import load_dataset

    from emo_lightning.inference.predictor import EmotionPredictor
    from emo_lightning.models.metrics import sample_jaccard
    from emo_lightning.models.thresholds import binarize

    # 59 tokens of label names + the text must fit the tiny model's 130 positions
    cfg = tiny_cfg("data=sem_eval_2018", "head=label_prompt", "logger=none", "data.max_length=64")
    assert cfg.head.pooling == "mean"  # the backbone's pooling reaches this head too
    metrics = train(cfg)
    spec = json.loads((tmp_path / "model" / "classifier.json").read_text())
    assert spec["head"]["type"] == "label_prompt" and len(spec["head"]["label_positions"]) == 11
    val = load_dataset(str(tiny_mirror / cfg.data.path), cfg.data.config_name, split="validation")
    predictor = EmotionPredictor.from_run(tmp_path, precision="fp32")
    probs = predictor.predict_proba(val["Tweet"])
    gold = torch.tensor([[row[name] for name in spec["label_names"]] for row in val]).bool()
    pred = binarize(probs, torch.tensor(spec["thresholds"]), spec["at_least_one"])
    assert float(sample_jaccard(pred, gold)) == pytest.approx(metrics["val/jaccard_tuned"], abs=1e-6)
