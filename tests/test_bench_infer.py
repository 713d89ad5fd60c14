"""bench_infer's peer row: `transformers.pipeline` on a run's folder, for both kinds of folder a run leaves; the
whole benchmark in its smallest mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.bench_infer import pipeline_row
from tests.conftest import ROOT
from tests.test_cli import run, tiny_args
from tests.test_model_folder import LABELS, TEXTS, export


@pytest.mark.parametrize(("pooling", "same_network"), [("pooler", True), ("mean", False)])
def test_pipeline_row_runs_on_either_folder(tmp_path, tiny_models, pooling, same_network):
    export(tmp_path / "run" / "model", "bert", tiny_models, pooling=pooling)
    texts = TEXTS * 4  # the row times one call per text and one call on all of them
    row = pipeline_row(tmp_path / "run", texts, [LABELS[0]] * len(texts))
    assert row["batch1_texts_per_s"] > 0 and row["batch64_texts_per_s"] > 0
    # the run's own network gives an accuracy; a head pipeline() cannot hold gets a new one: speed only
    assert (row["accuracy"] is not None) == same_network
    assert ("the run's network" in row["runs"]) == same_network


def test_smallest_mode_runs_every_row_and_the_service(tmp_path, tiny_models, tiny_mirror):
    """bench_infer end to end on a tiny trained run: the export it makes first, every row in its own process,
    the verdict lines and the service's load test — so `make bench-infer` cannot break unseen."""
    out = run(
        "train.py",
        *tiny_args(tiny_models, tiny_mirror),
        "trainer.max_epochs=1",
        "logger=none",
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_infer.py"), "--run", str(tmp_path / "run")]
    command += ["--tiny", "--out", str(tmp_path / "bench")]
    env = os.environ | {"EMO_DATA_DIR": str(tiny_mirror)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "machine:" in done.stdout and "auto / pipeline at batch 64" in done.stdout
    (saved,) = (tmp_path / "bench").glob("infer_*.json")
    report = json.loads(saved.read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert {"pipeline", "torch-fp32", "onnx", "auto"} <= set(rows)
    assert all(r["batch1_texts_per_s"] > 0 and r["batch64_texts_per_s"] > 0 for r in rows.values())
    assert report["texts"] == 16 and rows["auto"]["accuracy"] is not None
    service = report["service"]
    assert service["server_errors"] == 0 and service["problems"] == 0, service["problem_examples"]
    assert sum(service["status_counts"].values()) == 24 and "no answer" not in service["status_counts"]
