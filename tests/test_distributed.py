"""DDP under a multirun (2 CPU processes, gloo): one folder per job, written by rank 0, and validation metrics over the
whole split that equal a single-process evaluation of the same checkpoint."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_train
from tests.runs import classifier_and_data, quiet_trainer
from tests.test_cli import run, tiny_args


def test_ddp_sweep_writes_one_folder_per_job_with_whole_split_metrics(tmp_path, tiny_models, tiny_mirror):
    out = run(
        "train.py",
        "-m",
        "trainer=ddp_cpu",
        "loss=bce,focal",
        "data=sem_eval_2018",
        "trainer.max_steps=10",
        "trainer.precision=32-true",
        "logger=csv",
        *tiny_args(tiny_models, tiny_mirror),
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = tmp_path / "sweep"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]  # no folder of another rank anywhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    for job in jobs:
        assert (job / "model" / "classifier.json").exists() and (job / "checkpoints" / "last.ckpt").exists()
        assert (job / "train_rank1.log").exists()  # rank 1 ran this job, in this job's folder
        record = json.loads((job / "metrics.json").read_text())
        overrides = [o for o in OmegaConf.load(job / ".hydra" / "overrides.yaml") if not o.startswith("trainer=")]
        cfg = compose_train([*overrides, "trainer.devices=1", "trainer.accelerator=cpu"], job)
        module, datamodule = classifier_and_data(cfg)
        single = quiet_trainer(cfg).validate(module, datamodule=datamodule, ckpt_path=record["checkpoint"])[0]
        assert single.keys() <= record["metrics"].keys()
        for key, value in single.items():  # sharded over 2 ranks, synced: the whole split's figure
            assert record["metrics"][key] == pytest.approx(value, abs=1e-6), key
