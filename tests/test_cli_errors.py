"""Bad input through the real train.py: exit code 2, one line `error: <problem>: <fix>` last on stderr, nothing run.

The cases run train.py in-process (`runpy`, as `python train.py` would) to stay fast; one case runs it in a
subprocess to show the real script prints the same line. Add a case: `(id, overrides, expected message)`.
"""

from __future__ import annotations

import logging
import os
import runpy
import subprocess
import sys

import pytest
import torch

from tests.conftest import CONF, ROOT
from tests.test_cli import tiny_args

CPUS = os.cpu_count() or 1
GPUS = torch.cuda.device_count()
MODELS = ", ".join(sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
CALLBACKS = ", ".join(sorted(p.stem for p in (CONF / "callbacks").glob("*.yaml")))
NO_GPU = "trainer.accelerator=gpu but this machine has no CUDA GPU: use trainer=cpu (or trainer.accelerator=auto)"
TOO_MANY_GPUS = (
    f"trainer.devices=99 but this machine has {GPUS} CUDA GPU{'' if GPUS == 1 else 's'}: "
    f"use trainer.devices={GPUS} or fewer"
)
FILES = ["data=files", "data.train_file=train.csv"]  # never read: every case fails before any data loads

CASES = [
    # unknown keys, groups and options (Hydra's composition)
    (
        "unknown-key",
        ["trainer.max_epoch=1"],
        "trainer.max_epoch is not a key of trainer: did you mean trainer.max_epochs?",
    ),
    (
        "key-the-target-takes",
        ["trainer.num_nodes=1"],
        "trainer.num_nodes is not a key of trainer: add it with +trainer.num_nodes=1 "
        "(a parameter of lightning.Trainer)",
    ),
    (
        "appended-unknown-key",
        ["+trainer.max_epoch=1"],
        "trainer.max_epoch is not a parameter of lightning.Trainer: did you mean trainer.max_epochs?",
    ),
    (
        "unknown-key-no-match",
        ["paths.xyz=1"],
        "paths.xyz is not a key of paths: valid keys: data_dir, model_dir, output_dir",
    ),
    ("unknown-group", ["modle=minilm"], "modle is not a config group or key: did you mean model?"),
    (
        "unknown-null-group",
        ["experimnt=emotion_minilm"],
        "experimnt is not a config group or key: did you mean experiment?",
    ),
    (
        "unknown-option",
        ["model=minlm"],
        f"model=minlm is not an option of model: did you mean minilm? (options: {MODELS})",
    ),
    ("unknown-option-no-match", ["model=xlnet"], f"model=xlnet is not an option of model: use one of {MODELS}"),
    (
        "unknown-option-in-list",
        ["callbacks=[default,emaa]"],
        f"callbacks=emaa is not an option of callbacks: did you mean ema? (options: {CALLBACKS})",
    ),
    (
        "already-there",
        ["+trainer.max_epochs=1"],
        "trainer.max_epochs is already in the config: set it without the +, as trainer.max_epochs=1",
    ),
    ("delete-absent", ["~trainer.foo"], "trainer.foo is not in the config, so it cannot be deleted: drop ~trainer.foo"),
    # syntax
    (
        "bad-syntax",
        ["trainer.max_epochs=[1"],
        "trainer.max_epochs=[1 is not a valid override (no viable alternative at input '[1'): quote a value with "
        "special characters, e.g. 'trainer.max_epochs=\"[1\"', or fix its brackets",
    ),
    (
        "ambiguous-list",
        ["data.label_columns=anger,joy"],
        "data.label_columns=anger,joy is ambiguous: write a list as data.label_columns=[anger,joy] "
        "(or add -m to sweep over the values)",
    ),
    (
        "sweep-without-m",
        ["trainer.max_epochs=range(1,3)"],
        "trainer.max_epochs=range(1,3) is a sweep: add -m to run one job per value",
    ),
    # missing values and interpolations
    ("missing-value", ["data=files"], "data.train_file is required: add data.train_file=<path>"),
    (
        "interpolation-not-found",
        ["trainer.max_epochs=${sed}"],
        "trainer.max_epochs=${sed} refers to sed, which is not in the config: did you mean ${seed}?",
    ),
    (
        "unknown-resolver",
        ["model.model_dir=${oc.envv:HOME}"],
        "model.model_dir=${oc.envv:HOME} uses the unknown resolver oc.envv: did you mean oc.env?",
    ),
    # types, from the targets' annotations
    ("int", ["trainer.max_epochs=abc"], "trainer.max_epochs=abc must be an int or null"),
    ("int-not-float", ["data.batch_size=8.5"], "data.batch_size=8.5 must be an int"),
    ("number", ["head.dropout=abc"], "head.dropout=abc must be a number"),
    ("bool", ["data.length_grouped=maybe"], "data.length_grouped=maybe must be true or false"),
    ("type-named-by-reference", ["seed=abc"], "seed=abc must be an int"),
    (
        "list",
        [*FILES, "data.label_columns=anger"],
        "data.label_columns=anger must be a list of strings or null, e.g. data.label_columns=[anger]",
    ),
    # value ranges (VALUE_RULES)
    ("lr", ["optimizer.lr=-0.0001"], "optimizer.lr=-0.0001 must be > 0 and ≤ 1: e.g. optimizer.lr=1e-4"),
    ("lr-not-a-number", ["optimizer.lr=abc"], "optimizer.lr=abc must be a number > 0 and ≤ 1: e.g. optimizer.lr=1e-4"),
    (
        "weight-decay",
        ["optimizer.weight_decay=-1"],
        "optimizer.weight_decay=-1 must be ≥ 0: e.g. optimizer.weight_decay=0.01",
    ),
    ("batch-size", ["data.batch_size=0"], "data.batch_size=0 must be an int ≥ 1: e.g. data.batch_size=32"),
    (
        "eval-batch-size",
        ["data.eval_batch_size=0"],
        "data.eval_batch_size=0 must be an int ≥ 1: e.g. data.eval_batch_size=128",
    ),
    ("max-length", ["data.max_length=1"], "data.max_length=1 must be an int ≥ 2: e.g. data.max_length=128"),
    (
        "validation-fraction",
        [*FILES, "data.validation_fraction=1.0"],
        "data.validation_fraction=1.0 must be > 0 and < 1: e.g. data.validation_fraction=0.1",
    ),
    ("dropout", ["head.dropout=1.0"], "head.dropout=1.0 must be ≥ 0 and < 1: e.g. head.dropout=0.1"),
    ("threshold", ["threshold=1.5"], "threshold=1.5 must be > 0 and < 1: e.g. threshold=0.5"),
    ("floor", ["thresholds.floor=0.99"], "thresholds.floor=0.99 must be > 0 and ≤ 0.95: e.g. thresholds.floor=0.05"),
    (
        "warmup",
        ["scheduler.warmup_ratio=1"],
        "scheduler.warmup_ratio=1 must be ≥ 0 and < 1: e.g. scheduler.warmup_ratio=0.1",
    ),
    ("gamma", ["loss=focal", "loss.gamma=-1"], "loss.gamma=-1 must be ≥ 0: e.g. loss.gamma=2"),
    ("gamma-neg", ["loss=asl", "loss.gamma_neg=-1"], "loss.gamma_neg=-1 must be ≥ 0: e.g. loss.gamma_neg=4"),
    (
        "label-smoothing",
        ["loss=ce", "loss.label_smoothing=1"],
        "loss.label_smoothing=1 must be ≥ 0 and < 1: e.g. loss.label_smoothing=0.1",
    ),
    (
        "ema-decay",
        ["callbacks=[default,ema]", "callbacks.ema.decay=1"],
        "callbacks.ema.decay=1 must be > 0 and < 1: e.g. callbacks.ema.decay=0.998",
    ),
    (
        "patience",
        ["callbacks.early_stopping.patience=-1"],
        "callbacks.early_stopping.patience=-1 must be an int ≥ 0: e.g. callbacks.early_stopping.patience=3",
    ),
    (
        "max-epochs",
        ["trainer.max_epochs=0"],
        "trainer.max_epochs=0 must be an int ≥ 1, or -1 / null for no limit: e.g. trainer.max_epochs=3",
    ),
    (
        "max-steps",
        ["trainer.max_steps=0"],
        "trainer.max_steps=0 must be an int ≥ 1, or -1 for no limit: e.g. trainer.max_steps=1000",
    ),
    (
        "accumulate",
        ["trainer.accumulate_grad_batches=0"],
        "trainer.accumulate_grad_batches=0 must be an int ≥ 1: e.g. trainer.accumulate_grad_batches=2",
    ),
    (
        "clip",
        ["trainer.gradient_clip_val=-1"],
        "trainer.gradient_clip_val=-1 must be ≥ 0, or null for no clipping: e.g. trainer.gradient_clip_val=1.0",
    ),
    (
        "val-check-interval",
        ["trainer.val_check_interval=0"],
        "trainer.val_check_interval=0 must be > 0, or null for once per epoch: e.g. trainer.val_check_interval=0.5",
    ),
    (
        "limit-batches",
        ["trainer.limit_train_batches=0"],
        "trainer.limit_train_batches=0 must be > 0, or null for all batches: e.g. trainer.limit_train_batches=0.25",
    ),
    (
        "layer-decay",
        ["param_groups=layer_decay", "param_groups.layer_decay=1.5"],
        "param_groups.layer_decay=1.5 must be > 0 and ≤ 1: e.g. param_groups.layer_decay=0.9",
    ),
    # the machine
    (
        "cpu-devices",
        ["trainer.accelerator=cpu", "trainer.devices=999"],
        f"trainer.devices=999 but this machine has {CPUS} CPU core{'' if CPUS == 1 else 's'}: "
        f"use trainer.devices={CPUS} or fewer",
    ),
    ("gpu", ["trainer.accelerator=gpu", "trainer.devices=99"], TOO_MANY_GPUS if GPUS else NO_GPU),
    # the user's files (written by `bad_files` below), and combinations only the data reveals
    (
        "semicolon-file-read-as-csv",
        ["data=files", "data.train_file=semi.csv", "data.label_column=label"],
        "semi.csv: found 1 column 'text;label'; the file looks `;`-separated: set data.delimiter=';'",
    ),
    (
        "latin-1-file",
        ["data=files", "data.train_file=latin1.csv", "data.label_column=label"],
        "latin1.csv is not valid utf-8 (byte 0xe9 on line 2): set data.encoding=latin-1, or the encoding the file "
        "was saved in",
    ),
    (
        "malformed-jsonl-line",
        ["data=files", "data.train_file=bad.jsonl", "data.label_column=label"],
        "bad.jsonl line 2 is not valid JSON (Expecting property name enclosed in double quotes): fix that line",
    ),
    (
        "empty-label",
        ["data=files", "data.train_file=empty_label.csv", "data.label_column=label"],
        "empty_label.csv row 2 has no label in column 'label': fill it in or drop the row",
    ),
    (
        "one-class",
        ["data=files", "data.train_file=one_class.csv", "data.label_column=label"],
        "one_class.csv has examples of only one label ('joy'): a classifier needs examples of at least two labels",
    ),
    (
        "asl-on-single-label-data",
        ["loss=asl"],
        "loss=asl is for multi-label data, but this dataset is single-label: use loss=ce or loss=focal",
    ),
    (
        "maximizing-a-loss",
        ["callbacks.model_checkpoint.monitor=val/loss", "callbacks.model_checkpoint.mode=max"],
        "ModelCheckpoint monitors val/loss with mode=max, which would keep the worst model: use mode=min (or leave "
        "mode null to follow the metric)",
    ),
    (
        "endless",
        ["trainer.max_epochs=-1"],
        "trainer.max_epochs=-1 with no trainer.max_steps never ends, and the learning-rate schedule is sized by the "
        "run's steps: give trainer.max_steps=N (or trainer.max_epochs=N)",
    ),
    (
        "fp16-on-a-cpu",
        ["trainer.precision=16-mixed"],
        "trainer.precision=16-mixed (fp16 with loss scaling) needs a CUDA GPU: on this CPU use trainer.precision=auto "
        "(or bf16-mixed)",
    ),
    (
        "missing-checkpoint",
        ["ckpt_path=nope.ckpt"],
        "ckpt_path=nope.ckpt does not exist: give a .ckpt file, or resume=<run dir>",
    ),
    (
        "resume-not-a-folder",
        ["resume=nope"],
        "resume={tmp}/nope does not exist: give a training run's folder (outputs/runs/<time>)",
    ),
]


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def write_bad_files(folder) -> None:
    """The user files the data cases read, each wrong in one way."""
    rows = ["i am so happy,joy", "i feel sad,sadness", "so angry,anger"] * 4
    (folder / "semi.csv").write_text("text;label\n" + "\n".join(r.replace(",", ";") for r in rows) + "\n")
    (folder / "latin1.csv").write_bytes(("text,label\ncaf\u00e9 time,joy\n" + "\n".join(rows) + "\n").encode("latin-1"))
    (folder / "bad.jsonl").write_text('{"text": "so happy", "label": "joy"}\n{text: "sad", "label": "sadness"}\n')
    (folder / "empty_label.csv").write_text("text,label\nso happy,joy\nso sad,\n" + "\n".join(rows) + "\n")
    (folder / "one_class.csv").write_text("text,label\n" + "\n".join(f"happy {i},joy" for i in range(12)) + "\n")


def assert_refused(code, stderr: str, message: str, run_dir) -> None:
    assert last_line(stderr) == f"error: {message}", stderr[-3000:]
    assert code == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    for name in ("checkpoints", "metrics.json", "model"):
        assert not (run_dir / name).exists(), name


@pytest.mark.parametrize(("overrides", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(overrides, message, tmp_path, tiny_models, tiny_mirror, monkeypatch, capfd):
    from hydra.core.global_hydra import GlobalHydra

    args = [*tiny_args(tiny_models, tiny_mirror), *overrides, f"hydra.run.dir={tmp_path}/run"]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), *args])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.chdir(tmp_path)
    write_bad_files(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    assert not GlobalHydra.instance().is_initialized()  # Hydra cleared itself: the next case starts fresh
    message = message.replace("{tmp}", str(tmp_path))
    assert_refused(exit_info.value.code, capfd.readouterr().err, message, tmp_path / "run")
    if not (tmp_path / "run").exists():  # the refused run's folder is gone, and no log handler writes there
        assert not [h for h in logging.getLogger().handlers if str(tmp_path) in getattr(h, "baseFilename", "")]
        logging.getLogger("emo_lightning").warning("a record after the refusal")  # no file to reopen: no error


def test_the_script_prints_the_same_line(tmp_path, tiny_models, tiny_mirror):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HYDRA_FULL_ERROR": "0"}
    args = [*tiny_args(tiny_models, tiny_mirror), "optimizer.lr=-0.0001", f"hydra.run.dir={tmp_path}/run"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    message = "optimizer.lr=-0.0001 must be > 0 and ≤ 1: e.g. optimizer.lr=1e-4"
    assert_refused(out.returncode, out.stderr, message, tmp_path / "run")


def test_full_error_keeps_the_traceback(tmp_path, tiny_models, tiny_mirror, monkeypatch):
    """HYDRA_FULL_ERROR=1 set by the user: the raw exception comes out, as Hydra does it."""
    from omegaconf.errors import ConfigAttributeError

    args = [*tiny_args(tiny_models, tiny_mirror), "trainer.max_epoch=1", f"hydra.run.dir={tmp_path}/run"]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), *args])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(Exception) as info:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    assert isinstance(info.value.__cause__, ConfigAttributeError)
    assert os.environ["HYDRA_FULL_ERROR"] == "1"


def test_help_and_cfg_still_work(tmp_path, monkeypatch, capfd):
    """`--hydra-help` exits 0 through run_cli untouched; `--cfg job` prints the config; HYDRA_FULL_ERROR is restored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), "--hydra-help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    assert exit_info.value.code == 0 and "Hydra (1.3" in capfd.readouterr().out
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py"), "--cfg", "job", "trainer.max_epochs=7"])
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    assert "max_epochs: 7" in capfd.readouterr().out
    assert os.environ["HYDRA_FULL_ERROR"] == "0"


APP = """
import sys

import hydra

from emo_lightning.cli.runner import exit_on_bad_input, run_cli
from emo_lightning.utils.errors import ConfigError


@hydra.main(version_base="1.3", config_path=None)
def main(cfg):
    {body}


run_cli(main)
"""


@pytest.mark.parametrize(
    ("body", "code", "stderr"),
    [
        (  # Hydra adds a line of its own for an exception that leaves the task
            'raise ConfigError("x=1 is wrong: use x=2")',
            2,
            "Error executing job with overrides: []\nerror: x=1 is wrong: use x=2",
        ),
        (  # ...which exit_on_bad_input inside the task leaves out
            'with exit_on_bad_input():\n        raise ConfigError("x=1 is wrong: use x=2")',
            2,
            "error: x=1 is wrong: use x=2",
        ),
        ("sys.exit(3)", 3, ""),  # the task's own exit passes through untouched
    ],
    ids=["raised", "exit-on-bad-input", "task-exits"],
)
def test_run_cli_around_a_task(body, code, stderr, tmp_path, monkeypatch, capfd):
    script = tmp_path / "app.py"
    script.write_text(APP.format(body=body))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", [str(script)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == code
    assert capfd.readouterr().err.strip() == stderr


def test_run_cli_reraises_what_is_not_bad_input(tmp_path, monkeypatch):
    script = tmp_path / "app.py"
    script.write_text(APP.format(body='raise RuntimeError("a bug")'))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    with pytest.raises(RuntimeError, match="a bug"):
        runpy.run_path(str(script), run_name="__main__")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["text=hi", "threshold=1.5"],
            "threshold=1.5 must be > 0 and < 1, or null for the thresholds saved with the model",
        ),
        (
            ["text=hi", "threshold=nan"],
            "threshold=nan must be > 0 and < 1, or null for the thresholds saved with the model",
        ),
        (["text=hi", "top_k=0"], "top_k=0 must be an int ≥ 1"),
        (["input_file=missing.csv"], "input_file=missing.csv does not exist: give a file of texts"),
    ],
    ids=["threshold", "threshold-nan", "top-k", "missing-input"],
)
def test_predict_settings_are_checked_before_the_model_loads(tmp_path, args, message):
    """run_dir names no run at all: the settings' error comes first, so it came before any model was read."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "predict.py"), f"run_dir={tmp_path}/no-run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
