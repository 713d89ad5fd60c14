"""`bench_speed.py --tiny`: every row kind (our batching modes and precisions, the HF Trainer's, the full-epoch
pair) runs end to end in a child process on a random-init tiny BERT, so a config change cannot break
`make bench-speed` unseen (a `+key` for a key conf/ already had once did); bench_levers, bench_train and
bench_checkpointing likewise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, require_shared


def run_tiny(script: str, out_dir, tiny_mirror, *extra: str) -> subprocess.CompletedProcess:
    """`benchmarks/<script> --tiny` on the tiny mirror's data and MiniLM's tokenizer and config, writing to out_dir."""
    env = os.environ | {"EMO_MODEL_DIR": str(require_shared("models")), "EMO_DATA_DIR": str(tiny_mirror)}
    command = [sys.executable, str(ROOT / "benchmarks" / script), "--tiny", *extra, "--out", str(out_dir)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_tiny_bench_speed_runs_every_row_kind(tmp_path, tiny_mirror):
    out = run_tiny("bench_speed.py", tmp_path, tiny_mirror, "--datasets", "go_emotions")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "processor:" in out.stdout and "GEMM peak GFLOP/s: 32-true" in out.stdout
    assert "HF Trainer settings: train_sampling_strategy=group_by_length, optim=adamw_torch_fused" in out.stdout

    (saved,) = tmp_path.glob("speed_*.json")
    record = json.loads(saved.read_text())
    default = record["machine"]["default_precision"]
    kinds = {(r["runner"], r["mode"], r["precision"]) for r in record["rows"]}
    expected = {("ours", mode, "32-true") for mode in ("global", "dynamic", "grouped")}
    expected |= {("hf-trainer", "grouped", "32-true"), ("ours", "grouped", default), ("hf-trainer", "grouped", default)}
    assert kinds == expected
    for row in record["rows"]:
        assert row["dataset"] == "go_emotions" and row["steps"] == 2 and row["samples_per_s"] > 0
        assert len(row["repeats"]) == 2 and row["spread"].startswith("±")  # two runs in alternation
        if row["runner"] == "ours":
            assert row["vs_hf_best"] > 0  # beside the Trainer's row of the same precision
        else:
            assert row["settings"]["optim"] == "adamw_torch_fused"
    # ours pads each batch to its longest text, the global row to the longest of the whole training set
    by_mode = {r["mode"]: r for r in record["rows"] if r["runner"] == "ours" and r["precision"] == "32-true"}
    assert by_mode["global"]["padded_fraction"] > by_mode["grouped"]["padded_fraction"]
    assert [r["runner"] for r in record["emotion_epoch"]] == ["ours", "hf-trainer"]
    assert all(r["steps"] >= 2 and r["precision"] == default for r in record["emotion_epoch"])


def test_tiny_bench_levers_alternates_every_variant(tmp_path, tiny_mirror):
    out = run_tiny("bench_levers.py", tmp_path, tiny_mirror, "--profile", "all")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "processor:" in out.stdout and "GEMM peak GFLOP/s: 32-true" in out.stdout
    (saved,) = tmp_path.glob("levers_*.json")
    record = json.loads(saved.read_text())
    rows = {r["variant"]: r for r in record["rows"]}
    assert list(rows) == ["today", "clip-in-adamw", "fast-dropout", "frozen-embeddings", "all"]
    assert rows["today"]["speedup"] == 1.0
    assert all(len(r["rounds_ms"]) == 2 and r["ms_per_step"] > 0 for r in rows.values())
    (profile,) = record["profiles"]
    assert (
        profile.startswith("profile of all over 2 steps") and "aten::" in profile and "Self CPU time total" in profile
    )


def test_tiny_bench_train_times_ours_a_baseline_commit_and_the_hf_trainer_script_to_their_done_lines(
    tmp_path, tiny_mirror
):
    runners = ["--runners", "ours", "baseline", "hf-trainer", "--baseline", "HEAD"]
    out = run_tiny("bench_train.py", tmp_path, tiny_mirror, *runners)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (saved,) = tmp_path.glob("train_*.json")
    record = json.loads(saved.read_text())
    for runner in ("ours", "baseline", "hf-trainer"):
        (run,) = record["runs"][runner]
        assert run["seconds"] > 0 and 0 <= run["test_accuracy"] <= 1 and run["line"].startswith("done:")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert record["baseline"] == head and (tmp_path / f"baseline-{head[:12]}" / "train.py").is_file()
    assert "/baseline-0" in record["runs"]["baseline"][0]["line"]  # the done line of its own run folder
    assert list(tmp_path.glob("train_*/hf-trainer-0/model/config.json"))  # the script saved its model
    assert list(tmp_path.glob("train_*/ours-0/model/classifier.json"))
    assert list(tmp_path.glob("train_*/baseline-0/model/classifier.json"))
    assert "end to end (median): ours" in out.stdout and "baseline HEAD" in out.stdout
    assert "HF Trainer script" in out.stdout and "test accuracy" in out.stdout


def test_bench_train_refuses_a_baseline_that_is_not_a_commit(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--runners", "ours", "baseline"]
    out = subprocess.run(
        [*command, "--baseline", "no-such-ref", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode != 0 and "--baseline no-such-ref is not a commit" in out.stderr.strip().splitlines()[-1]
    missing = subprocess.run(command + ["--out", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and "--baseline REF and the runner 'baseline' go together" in missing.stderr


def test_tiny_bench_checkpointing_measures_both_variants_of_each_length(tmp_path, tiny_mirror):
    out = run_tiny("bench_checkpointing.py", tmp_path, tiny_mirror)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "processor:" in out.stdout and "| batch × tokens | checkpointing |" in out.stdout
    (saved,) = tmp_path.glob("checkpointing_*.json")
    rows = json.loads(saved.read_text())["rows"]
    assert [(r["length"], r["checkpointing"]) for r in rows] == [(16, False), (16, True), (32, False), (32, True)]
    for row in rows:
        assert row["batch_size"] == 4 and len(row["steps_ms"]) == 2 and row["peak_mib"] >= row["loaded_mib"] > 0
        assert ("time_vs_off" in row) == row["checkpointing"]
