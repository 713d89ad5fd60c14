"""The command line in subprocesses: fast_dev_run, a 2×2 multirun with W&B offline and its summary, predict, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import wandb_history_keys, wandb_run_info


def run(script: str, *args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HYDRA_FULL_ERROR": "0",
        "WANDB_SILENT": "true",
        **(env_extra or {}),
    }
    env.pop("WANDB_MODE", None)  # the product must go offline by itself
    env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def tiny_args(tiny_models, tiny_mirror, plots: bool = False, precision: str | None = "32-true") -> list[str]:
    """A tiny fast run: fp32 (autocast only costs a model this small) unless `precision=None` keeps `auto`; figures
    (seconds a run) only where the test looks at them."""
    return [
        f"model.pretrained_model_name_or_path={tiny_models['bert']}",
        f"paths.data_dir={tiny_mirror}",
        "trainer.accelerator=cpu",
        "data.batch_size=8",
        "callbacks.progress_bar.refresh_rate=0",
        "trainer.log_every_n_steps=1",
        *([] if plots else ["plots=none"]),
        *([f"trainer.precision={precision}"] if precision else []),
    ]


def test_fast_dev_run_then_predict(tmp_path, tiny_models, tiny_mirror):
    out = run(
        "train.py",
        "debug=fdr",
        *tiny_args(tiny_models, tiny_mirror, precision=None),  # the start line names what auto picks here
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "run" / "model" / "classifier.json").exists()
    # The console: each event once (no second copy in Lightning's own format), no adverts, no known library
    # warnings, no bars of a blink; first a start line and, last, an end line with the command to predict with.
    console = out.stdout + out.stderr
    events = [line.split("] - ", 1)[1] for line in console.splitlines() if "] - " in line]
    assert len(events) == len(set(events)) and not [line for line in console.splitlines() if line.startswith("INFO:")]
    for noise in ("litlogger", "LeafSpec", "Loading weights", "Creating CSV", "Tokenizing", "TPU available", "┃ Name"):
        assert noise not in console, noise
    start = events[0]  # the first line on the console; the setup's own lines follow it
    precision = re.search(r"precision auto → (\S+):", console).group(1)  # what this machine's kind picks
    assert start == (
        f"start: dair-ai/emotion (train 48, validation 24, test 24; 6 labels, single-label) · bert (0.0 M parameters) "
        f"· precision {precision} · run dir {tmp_path}/run"
    )
    assert events[-1].startswith("done: no best checkpoint (last weights): test/accuracy ")  # fast_dev_run saves none
    assert events[-1].endswith(
        f"predict with: python predict.py run_dir={tmp_path}/run texts='[\"i feel great today\"]'"
    )
    pred = run("predict.py", f"run_dir={tmp_path}/run", 'texts=["i feel so lonely","i am thrilled"]', cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr[-3000:]
    lines = pred.stdout.splitlines()
    assert lines[0] == "i feel so lonely" and len([ln for ln in lines if ln.startswith("  ")]) == 12
    probs = [float(ln.split()[-1]) for ln in lines[1:7]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 0.01
    # A whole file: written beside it with the same answer, and never overwritten by a second call.
    (tmp_path / "posts.tsv").write_text("text\tuser\ni feel so lonely\tann\ni am thrilled\tbo\n")
    whole = run("predict.py", f"run_dir={tmp_path}/run", "input_file=posts.tsv", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert whole.stdout.startswith("wrote 2 rows with predictions to posts.predictions.tsv")
    header, first, _ = (tmp_path / "posts.predictions.tsv").read_text().splitlines()
    columns = dict(zip(header.split("\t"), first.split("\t")))
    assert columns["user"] == "ann" and columns["predicted"] == lines[1].split()[0]
    assert abs(float(columns[f"prob_{columns['predicted']}"]) - probs[0]) < 1e-3
    again = run("predict.py", f"run_dir={tmp_path}/run", "input_file=posts.tsv", cwd=tmp_path)
    assert again.returncode == 2 and "exists: give another output_file" in again.stderr
    assert (tmp_path / "posts.predictions.tsv").read_text().splitlines()[1] == first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data=go_emotions", "loss=ce"], "loss=ce needs single-label data"),
        # in-process in test_cli_errors / test_config, the script's own path by test_cli_errors: long variants
        pytest.param(["head.pooling=avg"], "head.pooling=avg is not known", marks=pytest.mark.slow),
        pytest.param(["trainer.max_epoch=2"], "max_epoch", marks=pytest.mark.slow),
        (["model=minilmm"], "roberta_base"),
    ],
)
def test_bad_input_fails_before_training_in_one_line(tmp_path, tiny_models, tiny_mirror, args, message):
    out = run("train.py", *tiny_args(tiny_models, tiny_mirror), *args, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr + out.stdout
    assert not (tmp_path / "run").exists()  # the folder Hydra made for the refused run is gone
    assert "Traceback" not in out.stderr


def test_predict_on_missing_run_dir(tmp_path):
    out = run("predict.py", f"run_dir={tmp_path}/nope", "text=hi", cwd=tmp_path)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_multi_label_thresholds_round_trip_into_predict(tmp_path, tiny_models, tiny_mirror):
    """train.py tunes thresholds on validation and saves them; predict.py decides with them unless told not to."""
    out = run(
        "train.py",
        "data=go_emotions",
        "debug=fdr",
        *tiny_args(tiny_models, tiny_mirror),
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    spec_file = tmp_path / "run" / "model" / "classifier.json"
    spec = json.loads(spec_file.read_text())
    assert (
        len(spec["thresholds"]) == 28
        and dict(zip(spec["label_names"], spec["thresholds"]))
        == json.loads((tmp_path / "run" / "metrics.json").read_text())["thresholds"]  # keyed by label there
    )
    # Make the saved thresholds decisive: only "neutral" can pass (0.0), no other label can (1.01).
    spec["thresholds"] = [0.0 if name == "neutral" else 1.01 for name in spec["label_names"]]
    spec_file.write_text(json.dumps(spec))
    pred = run("predict.py", "run_dir=run", "text=i feel so lonely", cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr[-3000:]
    assert pred.stdout.splitlines()[-1] == "  above thresholds saved with the model: neutral"
    fixed = run("predict.py", "run_dir=run", "text=i feel so lonely", "threshold=0.000001", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert len(fixed.stdout.splitlines()[-1].split(": ", 1)[1].split(", ")) == 28
    # top_k: the k best shown, and the decided labels among them (all 28 pass this threshold)
    top = run("predict.py", "run_dir=run", "text=i feel so lonely", "threshold=0.000001", "top_k=2", cwd=tmp_path)
    assert top.returncode == 0, top.stderr[-3000:]
    shown = [line.split()[0] for line in top.stdout.splitlines()[1:3]]
    assert top.stdout.splitlines()[-1] == f"  above threshold 1e-06, of the 2 best: {', '.join(shown)}"


def test_multirun_records_a_failed_job_and_goes_on(tmp_path, tiny_models, tiny_mirror):
    """One bad job does not end the sweep: it is recorded as failed with its reason, and the command exits 1."""
    out = run(
        "train.py",
        "-m",
        "data=emotion,go_emotions",
        "loss=ce",
        "debug=fdr",
        *tiny_args(tiny_models, tiny_mirror),
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert (sweep / "0" / "metrics.json").exists() and (sweep / "0" / "model").is_dir()
    reason = "loss=ce needs single-label data, but this dataset is multi-label: use loss=bce or loss=focal"
    failure = json.loads((sweep / "1" / "failure.json").read_text())
    assert failure == {"error": reason, "type": "ConfigError", "step": None}
    assert not any((sweep / "1" / name).exists() for name in ("checkpoints", "metrics.json", "model"))
    summary = (sweep / "summary.md").read_text()
    assert "| `data=emotion` | 42 |" in summary
    assert f"- `1` (`data=go_emotions`, seed 42): ConfigError: {reason}" in summary
    assert "1 of 2 jobs failed" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_multirun_is_one_wandb_group_of_named_tagged_runs_that_make_syncs(tmp_path, tiny_models, tiny_mirror):
    """Two jobs of a multirun in one process: each its own W&B run (the second once wrote into the first's), named
    by what the sweep varies, in the sweep folder's group, tagged with its choices, holding its metrics and figures;
    the sweep's summary; `make wandb-sync SWEEP=<folder>` hands every run to `wandb sync`."""
    sweep = tmp_path / "2024-01-02_03-04-05"
    out = run(
        "train.py",
        "-m",
        "loss=bce,focal",
        "head=mlp",
        "data=sem_eval_2018",
        "logger=wandb",
        "logger.wandb.tags=[smoke]",
        "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        *tiny_args(tiny_models, tiny_mirror, plots=True),
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "W&B offline" in out.stderr + out.stdout
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 2
    offline_runs = []
    for job in jobs:
        assert "val/jaccard" in json.loads((job / "metrics.json").read_text())["metrics"]
        (offline_run,) = job.glob("wandb/offline-run-*")  # one W&B run per job, in the job's own folder
        offline_runs.append(offline_run)
        logged = wandb_history_keys(next(offline_run.glob("run-*.wandb")))
        assert {"val/f1_macro", "val/jaccard", "test/f1_macro", "train/loss"} <= logged
        assert {"plots/curves/_type", "plots/per_label_f1/_type"} <= logged  # the run's figures on its W&B page
    assert len({path.name.rsplit("-", 1)[-1] for path in offline_runs}) == 2  # two runs, not one written twice
    infos = [wandb_run_info(next(path.glob("run-*.wandb"))) for path in offline_runs]
    assert {info["group"] for info in infos} == {"2024-01-02_03-04-05"}
    assert sorted(info["name"] for info in infos) == ["loss=bce", "loss=focal"]
    for info in infos:
        loss = info["name"].split("=")[1]
        assert info["tags"] == {"smoke", "data:sem_eval_2018", "model:minilm", "head:mlp", f"loss:{loss}"}
        assert info["job_type"] == "sweep-job"
    summary = (sweep / "summary.md").read_text()  # written by the SweepSummary callback
    for config in ("loss=bce", "loss=focal"):  # the swept key names each configuration
        assert f"| `{config}` | 42 |" in summary
    assert (sweep / "summary.png").stat().st_size > 1000

    fake_venv = tmp_path / "venv"
    (fake_venv / "bin").mkdir(parents=True)
    (fake_venv / "bin" / "wandb").write_text('#!/bin/sh\necho "$@"\n')
    (fake_venv / "bin" / "wandb").chmod(0o755)
    make = ["make", "-s", "-C", str(ROOT), "wandb-sync", f"VENV={fake_venv}"]
    synced = subprocess.run([*make, f"SWEEP={sweep}"], capture_output=True, text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.split() == ["sync", *map(str, offline_runs)]
    usage = subprocess.run(make, capture_output=True, text=True, timeout=60)
    assert usage.returncode != 0 and "usage: make wandb-sync SWEEP=outputs/multirun/<time>" in usage.stderr


def test_wandb_fields_of_an_experiment_multirun_job_and_of_a_single_run(tmp_path):
    """In-process, on the composed config as the Hydra app sees it: with an experiment the group is
    `<experiment>/<sweep folder>`; a job whose sweep's overrides are unknown (no multirun.yaml) is named by all its
    overrides but hydra.*, paths cut to their last part; a single run is named by its folder, in no group."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from emo_lightning.training.loggers import hydra_run_fields

    sweep = tmp_path / "2024-01-02_03-04-05"
    overrides = ["experiment=sem_eval_2018_minilm", f"model.pretrained_model_name_or_path={tmp_path}/models/bert/"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"hydra.sweep.dir={sweep}"], return_hydra_config=True)
    with open_dict(cfg):  # what Hydra's launcher sets when it starts a job
        cfg.hydra.mode, cfg.hydra.runtime.cwd, cfg.hydra.runtime.output_dir = "MULTIRUN", str(tmp_path), f"{sweep}/0"
    try:
        HydraConfig.instance().set_config(cfg)
        assert hydra_run_fields() == {
            "name": "experiment=sem_eval_2018_minilm model.pretrained_model_name_or_path=bert",
            "group": "sem_eval_2018_minilm/2024-01-02_03-04-05",
            "tags": ["data:sem_eval_2018", "model:minilm", "head:linear", "loss:auto"],
            "job_type": "sweep-job",
        }
        with read_write(cfg.hydra):  # set_config made it read-only
            cfg.hydra.mode, cfg.hydra.runtime.output_dir = "RUN", f"{tmp_path}/2024-05-06_07-08"
        HydraConfig.instance().set_config(cfg)
        assert hydra_run_fields() == {
            "name": "2024-05-06_07-08",
            "tags": ["data:sem_eval_2018", "model:minilm", "head:linear", "loss:auto"],
            "job_type": "train",
        }
    finally:
        HydraConfig.instance().cfg = None
