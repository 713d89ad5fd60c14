"""make bench-quality's records: reused only for the same preset config, and a partial RESULTS.md that says so;
its smallest mode end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import CONF, ROOT
from tests.test_cli import tiny_args

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_quality import load_record, preset_fingerprint  # noqa: E402
from quality_report import write_results  # noqa: E402


def record(seed: int, accuracy: float, f1_macro: float, fingerprint: str = "abc") -> dict:
    return {
        "dataset": "emotion",
        "seed": seed,
        "fingerprint": fingerprint,
        "processor": "Test CPU",
        "capabilities": "CPU AVX2",
        "precision": "32-true",
        "commit": "0000000",
        "date": "2026-11-26",
        "wall_seconds": 600.0,
        "metrics": {"test/accuracy": accuracy, "test/f1_macro": f1_macro, "test/f1_weighted": accuracy},
        "per_label_f1": {"test": {"joy": f1_macro, "anger": f1_macro}},
        "thresholds": None,
    }


def test_fingerprint_follows_the_composed_preset_not_the_seed_or_paths(tmp_path):
    base = preset_fingerprint("sem_eval_2018", [])
    unlearned = ["seed=7", "paths.output_dir=/elsewhere", "logger=none", "plots=none"]
    assert preset_fingerprint("sem_eval_2018", unlearned) == base
    assert preset_fingerprint("sem_eval_2018", ["trainer.max_epochs=6"]) != base
    assert preset_fingerprint("emotion", []) != base
    conf = shutil.copytree(CONF, tmp_path / "conf")
    preset = conf / "experiment" / "sem_eval_2018_minilm.yaml"
    preset.write_text(preset.read_text().replace("max_epochs: 5", "max_epochs: 4"))
    assert preset_fingerprint("sem_eval_2018", [], conf_dir=conf) != base


def test_gradient_checkpointing_keeps_the_fingerprint():
    """It changes how a step's gradients are computed, not their values (tests/test_gradient_checkpointing.py)."""
    for dataset in ("emotion", "go_emotions"):
        base = preset_fingerprint(dataset, [])
        assert preset_fingerprint(dataset, ["model.gradient_checkpointing=true"]) == base
        assert preset_fingerprint(dataset, ["model.fast_dropout=false"]) != base  # the model's other keys count


def test_fingerprint_survives_a_module_move_but_not_a_class_change(tmp_path):
    """Moving a class to another package (issue 34's layout) changes no result, so its records stay."""
    base = preset_fingerprint("emotion", [])
    conf = shutil.copytree(CONF, tmp_path / "conf")
    checkpoint = conf / "callbacks" / "last_checkpoint.yaml"
    text = checkpoint.read_text()
    assert "_target_: emo_lightning.training.checkpointing.LastCheckpoint" in text
    checkpoint.write_text(text.replace("emo_lightning.training.checkpointing.", "emo_lightning.elsewhere."))
    assert preset_fingerprint("emotion", [], conf_dir=conf) == base
    checkpoint.write_text(text.replace("LastCheckpoint", "AnotherCheckpoint"))
    assert preset_fingerprint("emotion", [], conf_dir=conf) != base


def test_a_record_of_another_config_is_not_reused(tmp_path):
    path = tmp_path / "seed0.json"
    assert load_record(path, "abc") is None
    path.write_text(json.dumps(record(0, 0.93, 0.89, fingerprint="abc")))
    assert load_record(path, "abc")["metrics"]["test/accuracy"] == 0.93
    assert load_record(path, "def") is None


def test_partial_results_name_pending_seeds_and_judge_no_bar(tmp_path):
    page = tmp_path / "RESULTS.md"
    write_results(page, {"emotion": [record(0, 0.94, 0.90)]}, {"emotion": [0, 1, 2]}, "make bench-quality")
    text = page.read_text()
    assert "Incomplete: seeds [1, 2] not run yet" in text
    assert "test accuracy ≥ 0.935: 0.9400 — pending" in text
    assert "| 0 | 0.9400 | 0.9000 | 10.0 | Test CPU | 32-true | 0000000 |" in text


@pytest.mark.parametrize(("accuracies", "verdict"), [((0.94, 0.936, 0.932), "met"), ((0.94, 0.93, 0.93), "missed")])
def test_complete_results_judge_the_bar_on_the_mean(tmp_path, accuracies, verdict):
    runs = [record(seed, acc, 0.9) for seed, acc in enumerate(accuracies)]
    page = tmp_path / "RESULTS.md"
    write_results(page, {"emotion": runs}, {"emotion": [0, 1, 2]}, "make bench-quality")
    text = page.read_text()
    mean = sum(accuracies) / 3
    assert f"test accuracy ≥ 0.935: {mean:.4f} — {verdict}" in text
    assert "Incomplete" not in text
    assert "| accuracy | " in text and " ± " in text


def test_report_only_writes_the_page_from_matching_records_and_trains_nothing(tmp_path):
    records, page = tmp_path / "records", tmp_path / "RESULTS.md"
    (records / "emotion").mkdir(parents=True)
    current = record(0, 0.94, 0.90, fingerprint=preset_fingerprint("emotion", []))
    (records / "emotion" / "seed0.json").write_text(json.dumps(current))
    (records / "emotion" / "seed1.json").write_text(json.dumps(record(1, 0.5, 0.5, fingerprint="old")))
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_quality.py"), "--report-only"]
    done = subprocess.run([*command, "--records", str(records), "--results", str(page)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "training" not in done.stdout
    text = page.read_text()
    assert "| 0 | 0.9400 | 0.9000 |" in text and "0.5000" not in text  # the old config's record is left out
    assert "Incomplete: seeds [1, 2] not run yet" in text
    assert "SemEval" in text and "GoEmotions" in text
    assert f"from the per-run records in `{records.resolve()}/`" in text  # the folder read, not docs/results/


def test_smallest_mode_trains_records_and_resumes_without_training_again(tmp_path, tiny_models, tiny_mirror):
    """bench_quality's smallest mode end to end: one tiny preset run in its own train.py process, its record, the
    page; a second call reuses the record and trains nothing (the benchmark resumes)."""
    records, page, out = tmp_path / "records", tmp_path / "RESULTS.md", tmp_path / "quality"
    tiny = [a for a in tiny_args(tiny_models, tiny_mirror) if not a.startswith("callbacks.")] + ["trainer.max_steps=4"]
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_quality.py"), "--datasets", "emotion", "--seeds", "1"]
    command += ["--records", str(records), "--results", str(page), "--out", str(out), "--set", *tiny]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[emotion seed 0] training" in done.stdout
    saved = json.loads((records / "emotion" / "seed0.json").read_text())
    assert saved["fingerprint"] == preset_fingerprint("emotion", tiny) and 0 <= saved["metrics"]["test/accuracy"] <= 1
    assert saved["wall_seconds"] > 0 and saved["processor"]
    assert list(out.glob("bench/emotion/*/seed0/metrics.json"))
    assert f"| 0 | {saved['metrics']['test/accuracy']:.4f} |" in page.read_text()
    assert f"experiment=emotion_minilm {' '.join(tiny)} seed=<s>`" in page.read_text()  # how the runs were made
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training" not in again.stdout and "[emotion seed 0]" in again.stdout
