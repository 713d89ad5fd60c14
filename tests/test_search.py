"""hparams_search: the search-space grammar, a study that continues, and `train.py -m` with the emo_optuna sweeper."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import lightning as L
import optuna
import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from emo_lightning.sweeps.pruning import OptunaPruning
from emo_lightning.sweeps.study import (
    INTERRUPTED,
    open_study,
    override_value,
    parse_space,
    parse_spec,
    pruner_settings,
    pruning_monitor,
    pruning_override,
    recover_interrupted,
    tell,
    trials_done,
)
from emo_lightning.utils.config import validate_config
from emo_lightning.utils.errors import ConfigError
from tests.conftest import ROOT, compose_train
from tests.test_cli import run, tiny_args


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("choice(linear, mlp)", CategoricalDistribution(["linear", "mlp"])),
        ("choice(16, 32)", CategoricalDistribution([16, 32])),
        ("choice(true, null, 'a b', 0.5)", CategoricalDistribution([True, None, "a b", 0.5])),
        ("log_float(1e-5, 3e-4)", FloatDistribution(1e-5, 3e-4, log=True)),
        ("float(0.0, 0.3)", FloatDistribution(0.0, 0.3)),
        ("float(0, 1, step=0.25)", FloatDistribution(0.0, 1.0, step=0.25)),
        (" int(64, 128, step=32) ", IntDistribution(64, 128, step=32)),
        ("int(1,3)", IntDistribution(1, 3)),
        ("log_int(8, 512)", IntDistribution(8, 512, log=True)),
    ],
)
def test_grammar_parses_each_form(spec, expected):
    assert parse_spec("k", spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("uniform(0, 1)", 'search space k: "uniform(0, 1)" is not a search space: write choice(a, b, ...)'),
        ("0.1", 'search space k: "0.1" is not a search space'),
        (["a", "b"], "search space k: ['a', 'b'] is not a spec string: write choice(a, b, ...)"),
        ("choice()", 'search space k: "choice()" has an empty value: write choice(a, b, ...) with values'),
        ("choice(a, , b)", "has an empty value"),
        ("choice(a, a)", 'search space k: "choice(a, a)" lists a value twice: write each value once'),
        ("float(0.1)", 'search space k: "float(0.1)" needs two bounds: write float(low, high[, step=...])'),
        ("int(1, 2, 3)", "needs two bounds: write int(low, high[, step=...])"),
        ("float(a, 1)", "search space k: \"float(a, 1)\" has 'a' where a number belongs: write float(low, high"),
        ("int(1.5, 4)", "has '1.5' where an integer belongs"),
        ("float(1, 0.5)", 'search space k: "float(1, 0.5)" needs low < high: swap the bounds, or fix the value on'),
        (
            "log_float(0, 1)",
            'search space k: "log_float(0, 1)" is on a log scale, so low must be > 0: raise low or use',
        ),
        ("log_float(1e-5, 1, step=0.1)", "has an unknown argument step: a log scale takes no step"),
        ("int(1, 9, stride=2)", "has an unknown argument stride: the only keyword is step="),
        ("int(64, 128, step=30)", "needs a step > 0 that divides high - low: change the step or bounds"),
        ("int(64, 128, step=0)", "needs a step > 0 that divides high - low"),
    ],
)
def test_grammar_refuses_other_forms_in_one_line(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_spec("k", spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_sampled_values_are_read_back_by_hydras_override_parser():
    parser = OverridesParser.create()
    for value in [3e-05, 0.1, 64, True, None, "mlp", "a b", "it's", "x=y"]:
        parsed = parser.parse_override(f"key={override_value(value)}").value()
        assert parsed == value and type(parsed) is type(value), (value, parsed)


def test_space_keeps_order_and_dotted_keys():
    space = parse_space(OmegaConf.create({"optimizer.lr": "log_float(1e-5, 1e-3)", "head": "choice(linear, mlp)"}))
    assert list(space) == ["optimizer.lr", "head"]


def test_a_killed_sweep_s_running_trial_is_failed_and_asked_again(tmp_path):
    journal = str(tmp_path / "optuna.journal")
    space = parse_space({"x": "float(0, 1)", "h": "choice(a, b)"})
    study = open_study("s", journal, "maximize", "tpe", 0)
    tell(study, study.ask(space), 0.5)
    tell(study, study.ask(space), None, error="boom")
    tell(study, study.ask(space), math.nan)
    stranded = study.ask(space)  # the sweep is killed while this one runs
    again = open_study("s", journal, "maximize", "tpe", 0)
    assert trials_done(again) == 3
    assert recover_interrupted(again) == [stranded.number]
    trials = again.get_trials()
    finished = [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL, TrialState.FAIL]
    assert [t.state for t in trials] == [*finished, TrialState.WAITING]  # its params, enqueued
    assert trials[1].user_attrs["error"] == "boom" and trials[3].user_attrs[INTERRUPTED] is True
    assert trials_done(again) == 3  # the interrupted one does not count
    redo = again.ask(space)
    assert redo.number == 4 and redo.params == stranded.params


def test_a_study_keeps_its_direction_and_metric(tmp_path):
    open_study("s", str(tmp_path / "j.journal"), "maximize", "random", None)
    with pytest.raises(ConfigError, match="is set to maximize, not minimize: set hydra.sweeper.direction=maximize"):
        open_study("s", str(tmp_path / "j.journal"), "minimize", "random", None)
    open_study("m", str(tmp_path / "j.journal"), "maximize", "tpe", 0, "val/accuracy")
    with pytest.raises(ConfigError, match="study m in .* optimizes val/accuracy, not val/f1_macro: set optimized_metr"):
        open_study("m", str(tmp_path / "j.journal"), "maximize", "tpe", 0, "val/f1_macro")
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler=cmaes is not a sampler: use one of tpe, random"):
        open_study("s", None, "maximize", "cmaes", None)


class ScoreCurve(L.LightningModule):
    """A real fit whose validation logs val/accuracy = scores[i] at its i-th validation."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.layer, self.scores, self.validations = torch.nn.Linear(1, 1), scores, 0

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/accuracy", self.scores[min(self.validations, len(self.scores) - 1)])

    def on_validation_epoch_end(self):
        self.validations += not self.trainer.sanity_checking

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_trial(journal: str, trial_id: int, scores: list[float]) -> L.Trainer:
    """Fit ScoreCurve for 4 steps, validating every 2, with the pruning callback of trial `trial_id`."""
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 1)), batch_size=2)
    callback = OptunaPruning(journal, "p", trial_id, monitor="val/accuracy")
    trainer = L.Trainer(max_steps=4, val_check_interval=2, limit_val_batches=1, num_sanity_val_steps=1,
                        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback])  # fmt: skip
    trainer.fit(ScoreCurve(scores), data, data)
    return trainer


def test_pruning_callback_reports_each_validation_and_prunes_a_worse_curve(tmp_path):
    journal = str(tmp_path / "optuna.journal")
    space = parse_space({"x": "float(0, 1)"})
    study = open_study("p", journal, "maximize", "random", 0, "val/accuracy", pruner_settings("median", 1, 0, None))
    good = study.ask(space)
    fit_trial(journal, good._trial_id, [0.8, 0.9])  # not pruned: no complete trial to compare with yet
    tell(study, good, 0.9)
    assert study.trials[0].intermediate_values == {2: pytest.approx(0.8), 4: pytest.approx(0.9)}
    bad = study.ask(space)
    with pytest.raises(optuna.TrialPruned, match=r"^pruned at step 2: val/accuracy=0\.1000$"):
        fit_trial(journal, bad._trial_id, [0.1, 0.95])
    frozen = tell(study, bad, None, pruned="pruned at step 2: val/accuracy=0.1000")
    assert frozen.state == TrialState.PRUNED and frozen.intermediate_values == {2: pytest.approx(0.1)}
    assert frozen.value == pytest.approx(0.1) and frozen.user_attrs["pruned"].startswith("pruned at step 2")


def test_the_pruning_override_parses_and_composes(tmp_path):
    storage = str(tmp_path / "a b" / "it's" / "optuna.journal")  # slashes, a space and a quote survive
    override = pruning_override(storage, "emotion_optuna", 7, pruning_monitor("val/f1_macro_tuned"))
    value = OverridesParser.create().parse_override(override).value()
    assert value == {"_target_": "emo_lightning.sweeps.pruning.OptunaPruning", "storage": storage,
                     "study_name": "emotion_optuna", "trial_id": 7, "monitor": "val/f1_macro"}  # fmt: skip
    cfg = compose_train([override], tmp_path)
    validate_config(cfg)
    assert cfg.callbacks.optuna_pruning.storage == storage and cfg.callbacks.optuna_pruning.trial_id == 7
    assert "model_checkpoint" in cfg.callbacks  # added to the default callbacks, not instead of them


def test_pruner_settings_are_checked_in_one_line():
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.pruner=hyperband is not a pruner: use one of median, "):
        pruner_settings("hyperband", 2, 0, None)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.pruner=threshold needs a number, not hydra.sweeper.pr"):
        pruner_settings("threshold", 2, 0, None)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.pruner_warmup_steps=-1 must be an int ≥ 0: e.g. hydra"):
        pruner_settings("median", 2, -1, None)


def search_args(tmp_path, tiny_models, tiny_mirror, *extra: str) -> list[str]:
    return [
        "-m",
        *tiny_args(tiny_models, tiny_mirror),
        "trainer.max_steps=2",
        "logger=none",
        "data.max_length=32",  # fixed on the command line: out of the search
        f"hydra.sweep.dir={tmp_path}/search",
        *extra,
    ]


def study_trials(tmp_path, name: str) -> list[optuna.trial.FrozenTrial]:
    return open_study(name, str(tmp_path / "search" / "optuna.journal"), "maximize", "random", None).get_trials()


def test_emotion_search_runs_three_trials(tmp_path, tiny_models, tiny_mirror):
    args = search_args(tmp_path, tiny_models, tiny_mirror, "hparams_search=emotion_optuna", "hydra.sweeper.n_trials=3")
    out = run("train.py", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = tmp_path / "search"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()) == ["0", "1", "2"]
    assert (sweep / "optuna.journal").stat().st_size > 0
    trials = study_trials(tmp_path, "emotion_optuna")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for trial in trials:
        record = json.loads((sweep / str(trial.number) / "optuna_trial.json").read_text())
        assert record == {"number": trial.number, "params": trial.params, "state": "COMPLETE", "value": trial.value}
        assert "data.max_length" not in trial.params and "optimizer.lr" in trial.params
        metrics = json.loads((sweep / str(trial.number) / "metrics.json").read_text())["metrics"]
        assert metrics["val/accuracy"] == pytest.approx(trial.value)
        job = OmegaConf.load(sweep / str(trial.number) / ".hydra" / "config.yaml")
        assert job.optimizer.lr == pytest.approx(trial.params["optimizer.lr"])
        assert job.head._target_.endswith({"linear": "LinearHead", "mlp": "MLPHead"}[trial.params["head"]])
    best = OmegaConf.load(sweep / "optuna_best.yaml")
    top = max(trials, key=lambda t: t.value)
    assert best.best_trial == top.number and best.best_value == pytest.approx(top.value)
    assert best.optimized_metric == "val/accuracy" and best.trials == {"complete": 3}
    assert f"best trial {top.number}: val/accuracy=" in out.stdout + out.stderr


def test_search_refuses_a_command_line_sweep(tmp_path, tiny_models, tiny_mirror):
    args = search_args(tmp_path, tiny_models, tiny_mirror, "hparams_search=emotion_optuna", "seed=1,2")
    out = run("train.py", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "error: seed=1,2 is a sweep, which hydra/sweeper=emo_optuna does not take: give one value, or search it with "
        "hydra.sweeper.params={seed:'choice(...)'}"
    )
    assert not (tmp_path / "search" / "optuna.journal").exists()


def test_search_stops_when_the_jobs_do_not_log_the_metric(tmp_path, tiny_models, tiny_mirror):
    extra = ("hparams_search=emotion_optuna", "optimized_metric=val/jaccard")
    out = run("train.py", *search_args(tmp_path, tiny_models, tiny_mirror, *extra), cwd=tmp_path)
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith("error: optimized_metric=val/jaccard is not a metric the jobs log: set it to one of test/accuracy,")
    )
    assert [t.state for t in study_trials(tmp_path, "emotion_optuna")] == [TrialState.FAIL]  # stopped after one


@pytest.mark.slow
def test_parallel_search_with_failed_trials_then_continue(tmp_path, tiny_models, tiny_mirror):
    """submitit_local runs 3 trials at a time; loss=ce on multi-label data fails; a second command continues."""
    args = search_args(
        tmp_path,
        tiny_models,
        tiny_mirror,
        "hparams_search=go_emotions_optuna",
        "data=sem_eval_2018",  # the tiny mirror's multi-label set
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "hydra.sweeper.n_jobs=3",
        "hydra.sweeper.sampler=random",
        "hydra.sweeper.params={loss:'choice(bce, ce)'}",
        "head=linear",
        "head.pooling=mean",
        "scheduler.warmup_ratio=0.1",
    )
    first = run("train.py", *args, "hydra.sweeper.n_trials=6", cwd=tmp_path)
    trials = study_trials(tmp_path, "go_emotions_optuna")
    assert [t.number for t in trials] == list(range(6)), first.stderr[-3000:]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["loss"] == "ce" for t in failed)
    assert all(t.state == TrialState.COMPLETE for t in trials if t.params["loss"] == "bce")
    assert "loss=ce needs single-label data" in failed[0].user_attrs["error"]
    assert first.returncode == 1  # the sweep summary: failed jobs make the multirun exit 1, after the search ended
    assert (tmp_path / "search" / "optuna_best.yaml").exists()
    record = json.loads((tmp_path / "search" / str(failed[0].number) / "optuna_trial.json").read_text())
    assert record["state"] == "FAIL" and record["value"] is None
    summary = (tmp_path / "search" / "summary.md").read_text()  # the sweep summary covers the search
    best = study_trials(tmp_path, "go_emotions_optuna")
    best_number = max((t for t in best if t.state == TrialState.COMPLETE), key=lambda t: t.value).number
    assert "## Optuna trials" in summary and f"| {best_number} ★ | complete |" in summary
    assert f"Best: trial {best_number} " in summary
    assert f"| {failed[0].number} | fail |" in summary and "loss=ce needs single-label data" in summary
    again = run("train.py", *args, "hydra.sweeper.n_trials=8", cwd=tmp_path)
    assert again.returncode in (0, 1), again.stderr[-3000:]
    assert [t.number for t in study_trials(tmp_path, "go_emotions_optuna")] == list(range(8))
    assert (tmp_path / "search" / "7" / "optuna_trial.json").exists()


@pytest.mark.slow
def test_search_continues_from_the_trials_it_has(tmp_path, tiny_models, tiny_mirror):
    args = search_args(tmp_path, tiny_models, tiny_mirror, "hparams_search=emotion_optuna")
    first = run("train.py", *args, "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run("train.py", *args, "hydra.sweeper.n_trials=4", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = study_trials(tmp_path, "emotion_optuna")
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state == TrialState.COMPLETE for t in trials)
    assert "2 of 4 trials done" in again.stdout + again.stderr
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # the continued sampler drew new points
    assert sorted(p.name for p in (tmp_path / "search").iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]


def test_search_with_pruning_tells_pruned_trials(tmp_path, tiny_models, tiny_mirror):
    """A threshold no accuracy reaches prunes every trial at its first validation; the search still finishes."""
    extra = ("hparams_search=emotion_optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.pruning=true",
             "hydra.sweeper.pruner=threshold", "hydra.sweeper.pruner_threshold=1.01",
             "trainer.val_check_interval=1")  # fmt: skip
    out = run("train.py", *search_args(tmp_path, tiny_models, tiny_mirror, *extra), cwd=tmp_path)
    trials = study_trials(tmp_path, "emotion_optuna")
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2, out.stderr[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]  # a pruned job is not a failed one to the sweep summary
    for trial in trials:
        record = json.loads((tmp_path / "search" / str(trial.number) / "optuna_trial.json").read_text())
        assert record["state"] == "PRUNED" and record["pruned"].startswith("pruned at step 1: val/accuracy=")
        assert list(trial.intermediate_values) == [1] and record["value"] == pytest.approx(trial.intermediate_values[1])
    assert "has no complete trial" in out.stdout + out.stderr


def test_pruning_needs_a_storage_the_trials_reach(tmp_path, tiny_models, tiny_mirror):
    extra = ("hparams_search=emotion_optuna", "hydra.sweeper.pruning=true", "hydra.sweeper.storage=null")
    out = run("train.py", *search_args(tmp_path, tiny_models, tiny_mirror, *extra), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweeper.pruning=true needs a storage the trials' processes can reach: set hydra.sweeper.storage "
        "to a journal file, e.g. hydra.sweeper.storage=${hydra.sweep.dir}/optuna.journal"
    )


@pytest.mark.slow
def test_a_killed_search_continues_where_it_stopped(tmp_path, tiny_models, tiny_mirror):
    """SIGKILL after two trials; the same command again continues the study (the count goes on from 2)."""
    args = search_args(tmp_path, tiny_models, tiny_mirror, "hparams_search=emotion_optuna", "hydra.sweeper.n_trials=5")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (tmp_path / "search" / "1" / "optuna_trial.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    done = [t for t in study_trials(tmp_path, "emotion_optuna") if t.state == TrialState.COMPLETE]
    assert len(done) >= 2
    again = run("train.py", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(done)} of 5 trials done" in again.stdout + again.stderr
    trials = study_trials(tmp_path, "emotion_optuna")
    counted = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(counted) == 5 and [t.number for t in counted][: len(done)] == [t.number for t in done]
