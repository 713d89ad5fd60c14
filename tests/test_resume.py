"""Runs that survive: killed with SIGKILL (once during a checkpoint save), resumed with `resume=`, they end where an
uninterrupted run ends; SIGTERM saves and prints the resume command; W&B keeps its run id; SLURM requeues resume."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from emo_lightning.models.classifier import EmotionClassifier
from emo_lightning.train import train
from emo_lightning.training.checkpointing import LastCheckpoint, RunInterrupted
from emo_lightning.training.setup import build_trainer
from tests.conftest import ROOT
from tests.runs import classifier_and_data

CHECKPOINTS = "checkpoints"


def fault_args(tiny_models, tiny_mirror, *extra: str) -> list[str]:
    """A tiny deterministic run: 6 steps an epoch, 3 epochs, validation every 3 steps, last.ckpt every step, no
    figures."""
    return [
        f"model.pretrained_model_name_or_path={tiny_models['bert']}",
        f"paths.data_dir={tiny_mirror}",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.precision=32-true",
        "trainer.deterministic=true",
        "trainer.max_epochs=3",
        "trainer.val_check_interval=3",
        "trainer.log_every_n_steps=1",
        "data.batch_size=8",
        "optimizer.lr=1e-3",
        "callbacks.last_checkpoint.every_n_train_steps=1",
        "callbacks.progress_bar.refresh_rate=0",
        "plots=none",
        *extra,
    ]


def env() -> dict[str, str]:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}
    environment["WANDB_SILENT"] = "true"
    return environment


def start(args: list[str], cwd: Path, extra_env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def saved_step(run_dir: Path) -> int:
    """The global step in the run's last.ckpt (-1 before the first save)."""
    last = run_dir / CHECKPOINTS / "last.ckpt"
    if not last.exists():
        return -1
    return torch.load(last, weights_only=True, map_location="cpu")["global_step"]


def kill_after_step(process: subprocess.Popen, run_dir: Path, step: int, delay: float) -> None:
    """SIGKILL once last.ckpt holds `step` or later, after `delay` seconds (somewhere inside the next steps)."""
    last = run_dir / CHECKPOINTS / "last.ckpt"
    deadline = time.monotonic() + 240
    seen = -1
    while time.monotonic() < deadline and process.poll() is None:
        if last.exists():
            try:
                seen = saved_step(run_dir)
            except Exception:  # read while being replaced: try again
                seen = -1
        if seen >= step:
            time.sleep(delay)
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def kill_during_save(process: subprocess.Popen, run_dir: Path) -> bool:
    """SIGKILL the moment a checkpoint's temporary file appears; True when the kill landed inside a save."""
    folder = run_dir / CHECKPOINTS
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and any(p.name.endswith(".partial") for p in folder.iterdir()):
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            return any(p.name.endswith(".partial") for p in folder.iterdir())
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return False


def outcome(run_dir: Path) -> dict:
    record = json.loads((run_dir / "metrics.json").read_text())
    return {
        "step": saved_step(run_dir),
        "stopped": record["stopped"],
        "metrics": record["metrics"],
        "best": Path(record["checkpoint"]).name,
        "best_folder": Path(record["checkpoint"]).parent,
    }


def best_checkpoint(outcome: dict) -> dict:
    return torch.load(outcome["best_folder"] / outcome["best"], weights_only=True, map_location="cpu")


def assert_same_run(resumed: dict, reference: dict, run_dir: Path) -> None:
    """The resumed run ended where its reference run ended (at 18 steps, or earlier by early stopping: never a
    constant), for the same reason, with the same best model and figures."""
    assert resumed["step"] == reference["step"] == reference["stopped"]["step"]
    assert resumed["stopped"] == reference["stopped"]
    assert resumed["best"] == reference["best"] and resumed["best_folder"] == run_dir / CHECKPOINTS
    best, reference_best = best_checkpoint(resumed), best_checkpoint(reference)  # the same model was chosen
    assert best["global_step"] == reference_best["global_step"]
    for name, tensor in reference_best["state_dict"].items():
        assert torch.allclose(best["state_dict"][name], tensor, atol=1e-6), name
    assert resumed["metrics"].keys() == reference["metrics"].keys()
    for key, value in reference["metrics"].items():
        assert resumed["metrics"][key] == pytest.approx(value, abs=1e-6), key


def assert_finished(run_dir: Path) -> None:
    """The run of `fault_args` trained to its end: its 3 epochs, or fewer where early stopping ended it (the
    reference runs show which), and last.ckpt holds that end."""
    stopped = outcome(run_dir)["stopped"]
    assert stopped == {"reason": "max_epochs", "epochs": 3, "step": 18} or stopped["reason"] == "early_stopping"
    assert saved_step(run_dir) == stopped["step"]


def reference_run(tmp_path: Path, args: list[str]) -> dict:
    code, output = finish(start([*args, f"hydra.run.dir={tmp_path}/reference"], tmp_path))
    assert code == 0, output[-3000:]
    return outcome(tmp_path / "reference")


@pytest.mark.slow  # slow: the three-kill test below covers a kill and a resume too
def test_killed_run_resumes_to_the_same_result(tmp_path, tiny_models, tiny_mirror):
    args = fault_args(tiny_models, tiny_mirror)
    reference = reference_run(tmp_path, args)
    run_dir = tmp_path / "run"
    kill_after_step(start([*args, f"hydra.run.dir={run_dir}"], tmp_path), run_dir, step=7, delay=0.02)
    stopped_at = saved_step(run_dir)
    assert 7 <= stopped_at < reference["step"] and not (run_dir / "metrics.json").exists()
    code, output = finish(start([f"resume={run_dir}"], tmp_path))
    assert code == 0, output[-3000:]
    # the newest checkpoint: last.ckpt, or the best one when the kill fell between their saves at a validation's end
    assert re.search(
        rf"resuming {re.escape(str(run_dir))} from {re.escape(str(run_dir / CHECKPOINTS))}/\S+\.ckpt", output
    )
    assert_same_run(outcome(run_dir), reference, run_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference", "run"]  # no new run folder anywhere
    assert (run_dir / ".hydra" / "resume-1" / "overrides.yaml").is_file()


def test_three_kills_one_during_a_save_then_the_same_result(tmp_path, tiny_models, tiny_mirror):
    args = fault_args(tiny_models, tiny_mirror)
    reference = reference_run(tmp_path, args)
    run_dir = tmp_path / "run"
    rng = random.Random(0)
    kill_after_step(start([*args, f"hydra.run.dir={run_dir}"], tmp_path), run_dir, rng.randint(2, 5), rng.random() / 5)
    first = saved_step(run_dir)
    attempts = 0
    while attempts < 10:  # a save of a tiny model takes milliseconds: try until a kill lands inside one
        attempts += 1
        if kill_during_save(start([f"resume={run_dir}"], tmp_path), run_dir):
            break
    else:
        pytest.fail("no SIGKILL landed inside a checkpoint save in 10 attempts")
    print(f"a SIGKILL landed inside a save at attempt {attempts}")
    second = saved_step(run_dir)  # the checkpoint that was being replaced is still whole
    assert second >= first
    kill_after_step(
        start([f"resume={run_dir}"], tmp_path),
        run_dir,
        min(second + rng.randint(1, 4), reference["step"] - 2),
        rng.random() / 5,
    )
    code, output = finish(start([f"resume={run_dir}"], tmp_path))
    assert code == 0, output[-3000:]
    assert_same_run(outcome(run_dir), reference, run_dir)
    assert not [p for p in (run_dir / CHECKPOINTS).iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_a_checkpoint_and_prints_the_resume_command(signum, tmp_path, tiny_models, tiny_mirror):
    run_dir = tmp_path / "run"
    args = fault_args(
        tiny_models, tiny_mirror, "trainer.max_epochs=50", "callbacks.last_checkpoint.every_n_train_steps=null"
    )
    process = start([*args, f"hydra.run.dir={run_dir}"], tmp_path)
    deadline = time.monotonic() + 240
    while not (run_dir / CHECKPOINTS / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # the first validation's save: training is under way
    process.send_signal(signum)
    code, output = finish(process)
    assert code == 128 + signum, output[-3000:]
    step = saved_step(run_dir)
    assert 3 <= step < 300
    last_line = [line for line in output.splitlines() if line.strip()][-1]
    assert last_line.endswith(
        f"stopped by {signum.name} at step {step}; checkpoint {run_dir / CHECKPOINTS / 'last.ckpt'}: "
        f"continue with `python train.py resume={run_dir}`"
    )
    assert "Traceback" not in output and not (run_dir / "metrics.json").exists()


def test_resumed_wandb_run_keeps_its_run_id(tmp_path, tiny_models, tiny_mirror):
    run_dir = tmp_path / "run"
    args = fault_args(tiny_models, tiny_mirror, "logger=wandb", "trainer.max_epochs=1")
    code, output = finish(start([*args, f"hydra.run.dir={run_dir}"], tmp_path))
    assert code == 0, output[-3000:]
    first = [p.name for p in (run_dir / "wandb").glob("offline-run-*")]
    code, output = finish(start([f"resume={run_dir}", "trainer.max_epochs=2"], tmp_path))
    assert code == 0, output[-3000:]
    runs = sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*"))
    assert len(first) == 1 and len(runs) == 2
    assert {name.rsplit("-", 1)[-1] for name in runs} == {first[0].rsplit("-", 1)[-1]}  # one W&B run, continued
    stopped = outcome(run_dir)["stopped"]  # 2 epochs, 4 validations: early stopping (patience 3) cannot cut them
    assert saved_step(run_dir) == 12 and stopped == {"reason": "max_epochs", "epochs": 2, "step": 12}


def test_slurm_requeue_resumes_by_itself(tmp_path, tiny_models, tiny_mirror):
    """SIGUSR1 under SLURM: Lightning saves hpc_ckpt and calls `scontrol requeue`; the requeued job (same job id,
    SLURM_RESTART_COUNT=1, same command) finds its run folder and continues it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # stands in for SLURM's own command: records the requeue it was asked for
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/requeued\n')
    scontrol.chmod(0o755)
    slurm = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_NNODES": "1",
    }
    args = fault_args(tiny_models, tiny_mirror, "callbacks.last_checkpoint.every_n_train_steps=null")
    process = start(args, tmp_path, slurm)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("outputs/runs/*_slurm-4242/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGUSR1)
    while not (tmp_path / "requeued").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # what SLURM does to the job it requeued
    process.wait(timeout=60)
    assert (tmp_path / "requeued").read_text().split() == ["requeue", "4242"]
    (run_dir,) = tmp_path.glob("outputs/runs/*_slurm-4242")
    assert list(run_dir.glob("hpc_ckpt_*.ckpt"))
    code, output = finish(start(args, tmp_path, {**slurm, "SLURM_RESTART_COUNT": "1"}))
    assert code == 0, output[-3000:]
    assert f"resuming {run_dir}" in output
    assert list(tmp_path.glob("outputs/runs/*")) == [run_dir]
    assert_finished(run_dir)


def test_non_finite_loss_stops_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path, tiny_models, tiny_mirror):
    run_dir = tmp_path / "run"
    # A rate of 1 with weight decay 1000 multiplies every weight by -999 a step: the loss overflows within an epoch.
    args = fault_args(tiny_models, tiny_mirror, "optimizer.lr=1.0", "optimizer.weight_decay=1000")
    code, output = finish(
        start([*args, "callbacks.last_checkpoint.every_n_train_steps=2", f"hydra.run.dir={run_dir}"], tmp_path)
    )
    assert code == 1, output[-3000:]
    kept = saved_step(run_dir)
    last_line = [line for line in output.splitlines() if line.strip()][-1]
    assert re.search(
        r"error: the training loss is (nan|inf|-inf) at step (\d+) \(epoch 0\): lower optimizer.lr or check the data; "
        rf"the last good checkpoint is kept \({re.escape(str(run_dir / CHECKPOINTS / 'last.ckpt'))}, step {kept}\)$",
        last_line,
    ), last_line
    stopped = int(re.search(r"at step (\d+)", last_line).group(1))
    assert 0 < kept < stopped and "Traceback" not in output and not (run_dir / "metrics.json").exists()


def test_a_finished_run_is_never_written_into_nor_resumed_as_another_experiment(tmp_path, tiny_models, tiny_mirror):
    """Its folder refuses a new run (the same command again) and a resume with overrides that change the
    experiment, each in one line, and nothing in it changes."""
    run_dir = tmp_path / "run"
    args = [*fault_args(tiny_models, tiny_mirror), "debug=fdr", f"hydra.run.dir={run_dir}"]
    code, output = finish(start(args, tmp_path))
    assert code == 0, output[-3000:]
    before = (run_dir / "metrics.json").read_text()
    code, output = finish(start(args, tmp_path))
    assert code == 2
    assert output.strip().splitlines()[-1] == (
        f"error: {run_dir} already holds a run (checkpoints, metrics.json, model, predictions): continue it with "
        f"`python train.py resume={run_dir}`, or give a new hydra.run.dir"
    )
    code, output = finish(start([f"resume={run_dir}", "data.batch_size=16"], tmp_path))
    assert code == 2
    assert output.strip().splitlines()[-1] == (
        "error: resume= continues the run as it was, and data.batch_size=16 would change it: start a new run for "
        "that (resume= takes only trainer.max_epochs, trainer.max_steps, trainer.max_time and other overrides that "
        "extend or observe a run)"
    )
    assert (run_dir / "metrics.json").read_text() == before


@pytest.mark.slow  # slow: test_slurm_requeue_resumes_by_itself covers a requeued job's resume too
def test_a_requeued_job_continues_its_own_folder(tmp_path, tiny_models, tiny_mirror):
    """A sweep job that SLURM requeued (hydra/launcher=slurm: submitit re-runs the same job in the same folder)
    resumes from its checkpoint instead of being refused as a new run into a used folder."""
    run_dir = tmp_path / "sweep" / "0"
    args = [*fault_args(tiny_models, tiny_mirror), f"hydra.run.dir={run_dir}"]
    kill_after_step(start(args, tmp_path), run_dir, step=7, delay=0.0)
    assert saved_step(run_dir) >= 7 and not (run_dir / "metrics.json").exists()  # killed before its end
    slurm = {"SLURM_JOB_ID": "77", "SLURM_RESTART_COUNT": "1", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train"}
    code, output = finish(start(args, tmp_path, slurm))
    assert code == 0, output[-3000:]
    assert f"requeued SLURM job: resuming {run_dir}" in output
    assert_finished(run_dir)


# -- in-process runs: where a checkpoint lands in the data, and what a resume from it trains on ---------------------
class Recorder(Callback):
    """Observes a fit: each checkpoint's batch progress, the batches trained on; SIGTERM to this process after
    batch `signal_after` (its index in the epoch) of epoch `signal_epoch`."""

    def __init__(self, signal_after: int | None = None, signal_epoch: int = 0) -> None:
        self.saved_at: list[int] = []
        self.batches: list[list[list[int]]] = []
        self.signal_after, self.signal_epoch = signal_after, signal_epoch

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.saved_at.append(checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["ready"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch["input_ids"].tolist())  # which texts, in order

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.signal_after and trainer.current_epoch == self.signal_epoch:
            # a SIGTERM nobody handles ends the test worker itself: fail with the handler's name instead
            handler = signal.getsignal(signal.SIGTERM)
            assert isinstance(getattr(handler, "__self__", None), LastCheckpoint), f"SIGTERM handler: {handler!r}"
            signal.raise_signal(signal.SIGTERM)  # this thread: handled by LastCheckpoint before this batch ends


@pytest.fixture
def stray_sigterms():
    """A SIGTERM outside LastCheckpoint's handler is recorded here instead of ending the test worker."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGTERM, previous)


def fit_tiny(cfg, last: LastCheckpoint, recorder: Recorder, ckpt_path: Path | None = None) -> EmotionClassifier:
    """A real fit of the tiny config with `last` and `recorder` as its only callbacks (the same initial weights each
    time); returns the module with its final weights."""
    L.seed_everything(cfg.seed, workers=True)
    module, datamodule = classifier_and_data(cfg)
    trainer = build_trainer(cfg, callbacks=[last, recorder], logger=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return module


def accumulating_cfg(tiny_cfg, *extra: str):
    """12 batches an epoch, accumulated 3 by 3 (4 optimizer steps an epoch), 2 epochs, fp32, deterministic."""
    return tiny_cfg(
        "trainer.accumulate_grad_batches=3",
        "trainer.max_epochs=2",
        "trainer.precision=32-true",
        "trainer.deterministic=true",
        "data.batch_size=4",
        "optimizer.lr=1e-3",
        "callbacks=none",
        "logger=none",
        *extra,
    )


@pytest.mark.parametrize(
    ("trigger", "overrides", "expected"),
    [
        ({"every_n_train_steps": 1, "every_n_minutes": None}, [], [3, 6, 9, 12]),  # after each optimizer step
        ({"every_n_minutes": 1e-9}, [], [3, 6, 9, 12]),
        ({"every_n_minutes": None}, ["trainer.val_check_interval=4"], [6, 9, 12]),  # validations at 4, 8 and 12
    ],
    ids=["steps", "time", "validation"],
)
def test_checkpoints_land_on_accumulation_boundaries(trigger, overrides, expected, tiny_cfg, tmp_path):
    """A last.ckpt saved mid-accumulation would hold none of the gradients accumulated so far: a resume from it
    would step without them. Every save (by steps, by time, after a validation) waits for an optimizer step."""
    cfg = accumulating_cfg(tiny_cfg, *overrides)
    recorder = Recorder()
    fit_tiny(cfg, LastCheckpoint(tmp_path / CHECKPOINTS, handle_signals=False, **trigger), recorder)
    assert recorder.saved_at == expected * 2  # the batches done in the epoch, in both epochs


def test_a_stop_mid_accumulation_resumes_to_the_same_weights(tiny_cfg, tmp_path, stray_sigterms):
    """SIGTERM after the 5th batch (2 of the second step's 3 accumulated): the run stops after the 6th, at the step,
    and its resume ends with the weights of a run that never stopped."""
    cfg = accumulating_cfg(tiny_cfg)
    reference = fit_tiny(cfg, LastCheckpoint(tmp_path / "reference", every_n_minutes=None), Recorder())
    stopped = Recorder(signal_after=4)
    last = LastCheckpoint(tmp_path / CHECKPOINTS, every_n_minutes=None)
    with pytest.raises(RunInterrupted):
        fit_tiny(cfg, last, stopped)
    assert stopped.saved_at == [6] and stray_sigterms == []
    resumed = Recorder()
    module = fit_tiny(cfg, LastCheckpoint(tmp_path / CHECKPOINTS, every_n_minutes=None), resumed, ckpt_path=last.path)
    assert len(stopped.batches) + len(resumed.batches) == 24
    for name, tensor in reference.state_dict().items():
        assert torch.equal(module.state_dict()[name], tensor), name


def test_plain_shuffled_batches_resume_mid_epoch_in_the_same_order(tiny_cfg, tmp_path, stray_sigterms):
    """data.length_grouped=false: a run stopped after 3 of an epoch's 12 batches trains, resumed, on the batches the
    run that never stopped trains on, in its order, and ends with its weights."""
    cfg = tiny_cfg(
        "data.length_grouped=false",
        "trainer.max_epochs=2",
        "trainer.precision=32-true",
        "trainer.deterministic=true",
        "data.batch_size=4",
        "optimizer.lr=1e-3",
        "callbacks=none",
        "logger=none",
    )
    uninterrupted = Recorder()
    reference = fit_tiny(cfg, LastCheckpoint(tmp_path / "reference", every_n_minutes=None), uninterrupted)
    stopped = Recorder(signal_after=2)
    last = LastCheckpoint(tmp_path / CHECKPOINTS, every_n_minutes=None)
    with pytest.raises(RunInterrupted):
        fit_tiny(cfg, last, stopped)
    resumed = Recorder()
    module = fit_tiny(cfg, LastCheckpoint(tmp_path / CHECKPOINTS, every_n_minutes=None), resumed, ckpt_path=last.path)
    assert len(stopped.batches) == 3 and len(uninterrupted.batches) == 24 and stray_sigterms == []
    assert stopped.batches + resumed.batches == uninterrupted.batches
    assert uninterrupted.batches[:12] != uninterrupted.batches[12:]  # shuffled: each epoch its own order
    for name, tensor in reference.state_dict().items():
        assert torch.equal(module.state_dict()[name], tensor), name


def test_a_run_early_stopping_ended_stays_ended_on_resume_unless_given_more_patience(tiny_cfg, tmp_path):
    """Resuming a run that early stopping ended trained on to its next validation (Lightning does not keep
    `trainer.should_stop`), and `resume=… callbacks.early_stopping.patience=…` kept the checkpoint's patience."""
    never_better = ["trainer.max_epochs=20", "+callbacks.early_stopping.min_delta=1.0", "logger=none"]
    train(tiny_cfg(*never_better, "callbacks.early_stopping.patience=2"))
    first = json.loads((tmp_path / "metrics.json").read_text())["stopped"]
    assert first == {"reason": "early_stopping", "epochs": 3, "step": 18, "monitor": "val/accuracy", "patience": 2}
    train(tiny_cfg(*never_better, "callbacks.early_stopping.patience=2", f"resume={tmp_path}"))
    assert json.loads((tmp_path / "metrics.json").read_text())["stopped"] == first  # nothing more was trained
    assert saved_step(tmp_path) == 18
    train(tiny_cfg(*never_better, "callbacks.early_stopping.patience=4", f"resume={tmp_path}"))
    more = json.loads((tmp_path / "metrics.json").read_text())["stopped"]  # 2 more validations that do not improve
    assert more == {"reason": "early_stopping", "epochs": 5, "step": 30, "monitor": "val/accuracy", "patience": 4}
