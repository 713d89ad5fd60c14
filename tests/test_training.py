"""Real Lightning runs on tiny random-init models: learning, artifacts, export round trip, bad combinations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from datasets import load_dataset
from hydra.utils import instantiate

from emo_lightning.evaluation.splits import evaluate_splits
from emo_lightning.inference.engine import TorchBackend
from emo_lightning.inference.predictor import EmotionPredictor
from emo_lightning.train import train
from emo_lightning.training.setup import build_classifier
from emo_lightning.utils.errors import config_error_in
from tests.runs import classifier_and_data, quiet_trainer, refusal


@pytest.mark.parametrize("family", ["bert", "distilbert", "squeezebert", "roberta"])
def test_overfit_one_batch(family, tiny_cfg):
    cfg = tiny_cfg(
        "debug=overfit",
        "logger=none",
        "trainer.overfit_batches=1",
        "trainer.max_epochs=40",
        "optimizer.lr=3e-3",
        "data.batch_size=12",
        family=family,
    )
    L.seed_everything(cfg.seed)  # the head's initial weights and the dropout masks, whichever tests ran before
    module, datamodule = classifier_and_data(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    module.train()
    before = module.model_step(batch)[0].item()
    trainer = quiet_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)
    module.eval()
    with torch.no_grad():
        after = module.model_step(batch)[0].item()
    assert after < 0.1 * before, f"{family}: loss {before:.3f} → {after:.3f}"


class RowsAfterFit(L.Callback):
    """Counts the texts the real network reads after fit (a forward hook on it): the final evaluation's work."""

    rows = 0

    def on_fit_end(self, trainer, pl_module) -> None:
        RowsAfterFit.rows = 0

        def count(module, args, kwargs) -> None:
            ids = args[0] if args else kwargs["input_ids"]
            RowsAfterFit.rows += ids.shape[0]

        pl_module.network.register_forward_pre_hook(count, with_kwargs=True)


def last_logged(csv_file: Path) -> dict[str, float]:
    """Each column's last value in a CSVLogger's metrics.csv: what the logger shows as the run's final figure."""
    last = {}
    with csv_file.open() as f:
        for row in csv.DictReader(f):
            last |= {key: float(value) for key, value in row.items() if value not in ("", None)}
    return last


def test_train_writes_metrics_and_model_folder(tiny_cfg, tmp_path):
    rows_after_fit = f"+callbacks.rows_after_fit={{_target_:{__name__}.RowsAfterFit}}"
    cfg = tiny_cfg("data=go_emotions", "trainer.max_epochs=2", "logger=csv", "plots=default", rows_after_fit)
    metrics = train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    # after fit, validation and test are predicted once (the engine's pass), and the loggers show its figures
    assert RowsAfterFit.rows == record["examples"]["val"] + record["examples"]["test"]
    logged = last_logged(next((tmp_path / "csv").rglob("metrics.csv")))
    assert record["metrics"] == pytest.approx({key: logged[key] for key in record["metrics"]}, rel=1e-6, abs=1e-7)
    for key in (
        "val/f1_micro",
        "val/f1_macro",
        "val/auroc_micro",
        "val/auroc_macro",
        "val/jaccard",
        "val/exact_match",
        "test/f1_macro",
        "test/jaccard",
    ):
        assert key in record["metrics"] and key in metrics
    assert record["monitor"] == "val/f1_macro" and record["checkpoint"].endswith(".ckpt")
    spec = json.loads((tmp_path / "model" / "classifier.json").read_text())
    assert spec["multi_label"] and len(spec["label_names"]) == 28
    assert spec["problem_type"] == "multi_label_classification"
    csv_files = list((tmp_path / "csv").rglob("metrics.csv"))
    assert csv_files and "test/f1_macro_tuned" in csv_files[0].read_text().splitlines()[0]
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    expected = ["curves.png", "per_label_f1.png", "pr_curves_test.png", "pr_curves_val.png"]
    assert plots == [*expected, "reliability_test.png", "reliability_val.png"]  # no confusion matrix: multi-label
    assert all((tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG" for name in plots)
    # predictions/val.csv: label sets at the tuned thresholds, as exact_match_tuned counted them
    rows = load_dataset("csv", data_files=str(tmp_path / "predictions" / "val.csv"), split="train")
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    validation = datamodule.labeled.splits["validation"]
    names = datamodule.label_names
    assert rows["text"] == validation["text"]
    gold = [",".join(n for n, on in zip(names, hot) if on) for hot in validation["labels"]]
    assert [g or "" for g in rows["gold"]] == gold
    assert list(record["thresholds"]) == names  # keyed by label name
    thresholds = torch.tensor(list(record["thresholds"].values()))
    for row in rows:
        probs = torch.tensor([row[f"prob_{name}"] for name in names])
        clear = {n for n, near in zip(names, ((probs - thresholds).abs() < 1e-4).tolist()) if not near}  # rounding
        above = {n for n, on in zip(names, (probs >= thresholds).tolist()) if on}
        assert set(filter(None, (row["predicted"] or "").split(","))) & clear == above & clear
    exact = record["metrics"]["val/exact_match_tuned"]
    assert sum(rows["correct"]) / len(rows) == pytest.approx(exact, abs=1e-6)


def test_exported_model_predicts_like_the_module(tiny_cfg, tmp_path):
    # the machine's training precision (bf16 autocast on AMX): metrics.json's figures still come from the fp32
    # outputs predictions/test.csv holds, not from the test loop (where a tiny model's near ties may fall otherwise)
    cfg = tiny_cfg("logger=none", "plots=default")
    train(cfg)
    predictor = EmotionPredictor.from_run(tmp_path, precision="fp32")  # compared with the fp32 module at 1e-5
    texts = ["i feel so lonely", "i am thrilled and happy about today", "scared"]
    probs = predictor.predict_proba(texts)
    assert probs.shape == (3, 6) and torch.allclose(probs.sum(1), torch.ones(3))
    # rebuild the module from the best checkpoint and compare
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    module, _ = build_classifier(cfg, datamodule)
    ckpt = json.loads((tmp_path / "metrics.json").read_text())["checkpoint"]
    module.load_state_dict(torch.load(ckpt, weights_only=False)["state_dict"])
    module.eval()
    batch = datamodule.tokenizer(texts, padding=True, return_tensors="pt")
    temperatures = torch.tensor(json.loads((tmp_path / "metrics.json").read_text())["temperatures"])
    with torch.no_grad():  # the exported model is calibrated: the module's logits over the temperature
        expected = module.probabilities(module(batch["input_ids"], batch["attention_mask"]) / temperatures)
    assert torch.allclose(probs, expected, atol=1e-5)
    assert all(p.dtype == torch.float32 for p in predictor.network.parameters())
    machine = EmotionPredictor.from_run(tmp_path, batch_size=64)  # backend auto: bf16 in batches on AMX
    tolerance = 0.02 if "bf16" in machine.backend.name else 1e-5  # bf16 keeps 8 bits of mantissa
    assert torch.allclose(machine.predict_proba(texts), expected, atol=tolerance)
    ranked = predictor.predict(texts)[0]
    assert ranked.scores[0][1] == max(ranked.scores[i][1] for i in range(6))
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    expected = ["confusion_test.png", "confusion_val.png", "curves.png", "per_label_f1.png"]
    assert plots == [*expected, "reliability_test.png", "reliability_val.png"]
    # predictions/test.csv: the dataset's order, the exported model's probabilities, right where test/accuracy says
    rows = load_dataset("csv", data_files=str(tmp_path / "predictions" / "test.csv"), split="train")
    test = datamodule.labeled.splits["test"]
    assert rows["text"] == test["text"]
    assert rows["gold"] == [datamodule.label_names[i] for i in test["labels"]]
    names = datamodule.label_names
    file_probs = torch.tensor([[row[f"prob_{name}"] for name in names] for row in rows])
    exact = predictor.predict_proba(test["text"])
    assert torch.allclose(file_probs, exact, atol=1e-4)
    assert rows["predicted"] == [names[i] for i in exact.argmax(1)]  # the file rounds: near-uniform rows would tie
    accuracy = json.loads((tmp_path / "metrics.json").read_text())["metrics"]["test/accuracy"]
    assert sum(rows["correct"]) / len(rows) == pytest.approx(accuracy, abs=1e-6)


def test_confusion_counts_agree_with_accuracy_and_per_label_f1(tiny_cfg):
    # fp32 on both sides: a tiny random model's logits are near ties, which bf16 autocast may break either way
    cfg = tiny_cfg("logger=none", "trainer.max_epochs=2", "trainer.precision=32-true")
    module, datamodule = classifier_and_data(cfg)
    trainer = quiet_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)
    accuracy = trainer.validate(module, datamodule=datamodule, verbose=False)[0]["val/accuracy"]
    validation = datamodule.labeled.splits["validation"]
    backend = TorchBackend(module.network)
    texts, labels = {"validation": validation["text"]}, {"validation": validation["labels"]}
    names, tokenizer = datamodule.label_names, datamodule.tokenizer
    result = evaluate_splits(backend, tokenizer, texts, labels, names, False, None, max_length=datamodule.max_length)
    counts = result.confusion["val"].double()  # rows: true label, columns: predicted
    assert counts.sum() == len(datamodule.labeled.splits["validation"])
    assert counts.trace() / counts.sum() == pytest.approx(accuracy, abs=1e-6)
    f1 = 2 * counts.diag() / (counts.sum(0) + counts.sum(1)).clamp(min=1)
    assert f1.tolist() == pytest.approx(list(result.per_label["val"].values()), abs=1e-4)


def test_ce_on_multi_label_data_is_refused_before_training(tiny_cfg, tmp_path):
    cfg = tiny_cfg("data=go_emotions", "loss=ce")
    error = refusal(cfg, tmp_path)
    assert "use loss=bce or loss=focal" in error


def test_config_override_typo_of_backbone_field(tiny_cfg):
    cfg = tiny_cfg("model.config_overrides={hiden_dropout_prob:0.2}")
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    with pytest.raises(Exception) as info:
        build_classifier(cfg, datamodule)
    assert "hiden_dropout_prob is not a field of BertConfig" in str(config_error_in(info.value))


def test_ema_weights_are_validated_checkpointed_and_exported(tiny_cfg, tmp_path):
    cfg = tiny_cfg("callbacks=[default,ema]", "callbacks.ema.decay=0.5", "trainer.max_epochs=2", "logger=none")
    train(cfg)
    ckpt = torch.load(json.loads((tmp_path / "metrics.json").read_text())["checkpoint"], weights_only=False)
    averaged, current = ckpt["state_dict"], ckpt["current_model_state"]
    key = "network.head.classifier.weight"
    assert not torch.equal(averaged[key], current[key]), "the checkpoint should hold the averaged weights"
    predictor = EmotionPredictor.from_run(tmp_path)
    exported = predictor.network.head.state_dict()["classifier.weight"]
    (temperature,) = json.loads((tmp_path / "metrics.json").read_text())["temperatures"]  # folded into the export
    assert torch.equal(exported, (averaged[key].double() / temperature).float())


def test_warm_start_from_a_finished_runs_model_folder(tiny_cfg, tmp_path):
    first = tiny_cfg("data=go_emotions", "logger=none")
    train(first)
    second = tiny_cfg("data=emotion", f"model.pretrained_model_name_or_path={tmp_path / 'model'}")
    module, datamodule = classifier_and_data(second)
    trained = EmotionPredictor.from_run(tmp_path).network.backbone.state_dict()
    for name, value in module.network.backbone.state_dict().items():
        assert torch.equal(value, trained[name]), name
    assert module.network.head.classifier.out_features == 6  # a new head for the new labels


def test_debug_runs_evaluate_only_what_their_trainer_reads(tiny_cfg, tmp_path):
    """debug=fdr: one batch of each split, also in the final evaluation, and metrics.json says so."""
    cfg = tiny_cfg("data=go_emotions", "debug=fdr", "logger=none", "data.eval_batch_size=4")
    train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["notes"] == [
        "probabilities are temperature-scaled, fitted on validation (val/ece_calibrated is optimistic, "
        "test/ece_calibrated is not); thresholds, *_tuned and predictions/ are on that scale",
        "val/*_tuned are scored on the split the thresholds were tuned on (optimistic); test/*_tuned are not",
        "a debug run: evaluated on part of validation (first 4 examples), test (first 4 examples)",
    ]
    assert record["tuned_on"] == "validation"
    assert record["examples"] == {"val": 4, "test": 4}  # what every figure of each split saw
    rows = load_dataset("csv", data_files=str(tmp_path / "predictions" / "val.csv"), split="train")
    assert len(rows) == 4


def test_a_loss_monitor_keeps_the_lowest(tiny_cfg, tmp_path):
    """monitor=val/loss with mode left null: the best checkpoint is the one with the lowest validation loss."""
    # fp32: metrics.json's val/loss (the inference path's) then equals the fit loop's at the best epoch
    cfg = tiny_cfg(
        "logger=csv", "trainer.max_epochs=3", "callbacks.model_checkpoint.monitor=val/loss", "trainer.precision=32-true"
    )
    train(cfg)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["monitor"] == "val/loss"
    rows = load_dataset("csv", data_files=str(next((tmp_path / "csv").rglob("metrics.csv"))), split="train")
    losses = [row["val/loss"] for row in rows if row["val/loss"] is not None][:3]  # the three fit validations
    assert record["metrics"]["val/loss"] == pytest.approx(min(losses), abs=1e-5)


def test_max_steps_shorter_than_an_epoch_still_validates_and_keeps_a_best_checkpoint(tiny_cfg, tmp_path, caplog):
    """6 steps an epoch, max_steps=3: without a change the run would validate never and keep no best checkpoint."""
    with caplog.at_level("INFO", logger="emo_lightning"):
        train(tiny_cfg("data=sem_eval_2018", "trainer.max_steps=3", "logger=csv"))
    assert "trainer.max_steps=3 ends before the first validation (after 6 steps, one epoch): validating at step 3" in (
        caplog.text
    )
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["checkpoint"] and Path(record["checkpoint"]).is_file()
    assert record["examples"] == {"val": 24, "test": 24}  # whole splits
    assert record["stopped"] == {"reason": "max_steps", "epochs": 1, "step": 3}  # the first epoch, cut short
    rows = load_dataset("csv", data_files=str(next((tmp_path / "csv").rglob("metrics.csv"))), split="train")
    validated = [row for row in rows if row.get("val/f1_macro") is not None]
    assert validated and validated[0]["step"] == 2  # logged at the third step (step counts from 0)


@pytest.mark.parametrize(
    ("overrides", "expected", "said"),
    [
        (  # min_delta 1: accuracy can never improve by 1 after the first validation
            ["trainer.max_epochs=20", "callbacks.early_stopping.patience=2", "+callbacks.early_stopping.min_delta=1.0"],
            {"reason": "early_stopping", "epochs": 3, "step": 18, "monitor": "val/accuracy", "patience": 2},
            "early stopping after 3 epochs (18 steps): val/accuracy did not improve in 2 validations",
        ),
        (
            ["trainer.max_epochs=2"],
            {"reason": "max_epochs", "epochs": 2, "step": 12},
            "trainer.max_epochs reached after 2 epochs (12 steps)",
        ),
        (
            ["trainer.max_epochs=1000", "+trainer.max_time=00:00:00:02", "callbacks.early_stopping.patience=1000"],
            {"reason": "max_time"},
            "trainer.max_time reached",
        ),
    ],
    ids=["early_stopping", "max_epochs", "max_time"],
)
def test_metrics_json_and_the_end_line_say_why_training_stopped(overrides, expected, said, tiny_cfg, tmp_path, caplog):
    """Early stopping is on by default: a run whose monitored metric cannot improve stops after `patience`
    validations that did not improve on the first (patience + 1 epochs, validating once an epoch)."""
    with caplog.at_level("INFO", logger="emo_lightning"):
        train(tiny_cfg("logger=none", *overrides))
    stopped = json.loads((tmp_path / "metrics.json").read_text())["stopped"]
    assert stopped == expected | {k: v for k, v in stopped.items() if k in ("epochs", "step") and k not in expected}
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == stopped["step"] > 0
    (done,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("done: ")]
    assert f" · stopped: {said}" in done and " · run dir " in done
