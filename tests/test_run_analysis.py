"""`analyze.py task=errors` and `task=report` on finished tiny runs: the errors of any split through the model
folder agree with the run's own errors.csv; report.md holds the run's figures beside the published anchors."""

from __future__ import annotations

import csv
import json

import pytest

from emo_lightning.analysis.error_analysis import run_errors
from emo_lightning.analysis.report import run_report
from emo_lightning.analysis.tasks import check_task_inputs
from emo_lightning.evaluation.error_rows import ERROR_COLUMNS
from emo_lightning.train import train
from emo_lightning.utils.errors import ConfigError
from tests.test_analyze import compose_analyze, is_png
from tests.test_cli import run


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def finished_run(tiny_cfg, tmp_path):
    """A tiny finished run folder (training config, metrics.json, model/, errors.csv, figures) of `data`."""

    def make(data: str, *extra: str):
        run_dir = tmp_path / f"run-{data}"
        cfg = tiny_cfg(f"data={data}", "logger=none", "trainer.max_epochs=2", *extra)
        cfg.paths.output_dir = str(run_dir)
        train(cfg)
        (run_dir / ".hydra").mkdir()  # what Hydra writes beside a run: the config it trained with, its choices
        from omegaconf import OmegaConf

        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
        (run_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    choices:\n      data: {data}\n")
        return run_dir

    return make


def test_errors_of_validation_agree_with_the_runs_own_errors_csv(finished_run, tmp_path):
    run_dir = finished_run("emotion")
    out = tmp_path / "analysis"
    summary = run_errors(compose_analyze(["task=errors", f"run_dir={run_dir}", "errors.split=val"], out), out)
    rows = read_csv(out / "errors_val.csv")
    own = [row for row in read_csv(run_dir / "errors.csv") if row["split"] == "val"]
    assert list(rows[0]) == ERROR_COLUMNS and len(rows) == len(own)

    def key(row):
        return row["text"], row["gold"], float(row["loss"])

    # the model folder (calibration folded in) gives the run's own losses and decisions, text by text
    for ours, theirs in zip(sorted(rows, key=key), sorted(own, key=key)):
        assert (ours["text"], ours["gold"], ours["predicted"]) == (theirs["text"], theirs["gold"], theirs["predicted"])
        assert float(ours["loss"]) == pytest.approx(float(theirs["loss"]), abs=1e-4)
    losses = [float(row["loss"]) for row in rows]
    assert losses == sorted(losses, reverse=True)
    text = summary.read_text()
    accuracy = json.loads((run_dir / "metrics.json").read_text())["metrics"]["val/accuracy"]
    assert f"| val/accuracy | {accuracy:.4f} |" in text and "val/ece_calibrated" in text
    assert is_png(out / "confusion_val.png") and is_png(out / "reliability_val.png")
    assert "![reliability_val](reliability_val.png)" in text
    with pytest.raises(ConfigError, match="already holds an error analysis"):  # nothing overwritten
        run_errors(compose_analyze(["task=errors", f"run_dir={run_dir}", "errors.split=val"], out), out)


def test_errors_of_a_multi_label_test_split_draw_pr_curves(finished_run, tmp_path):
    run_dir = finished_run("go_emotions")
    out = tmp_path / "analysis"
    summary = run_errors(compose_analyze(["task=errors", f"run_dir={run_dir}"], out), out)
    assert is_png(out / "pr_curves_test.png") and is_png(out / "reliability_test.png")
    assert not (out / "confusion_test.png").exists()
    text = summary.read_text()
    assert "| test/f1_micro |" in text and "| test/jaccard |" in text
    rows = read_csv(out / "errors_test.csv")
    assert rows and {row["split"] for row in rows} == {"test"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["errors.split=tset"],
            "errors.split=tset is not a split name: did you mean errors.split=test?",  # before the data loads
        ),
        (["errors.precision=int8"], "errors.precision=int8 is not one of auto, fp32, bf16, fp16"),
        (["errors.top=0"], "errors.top=0 must be an int ≥ 1: e.g. errors.top=20"),
    ],
)
def test_bad_errors_settings_are_one_line(finished_run, tmp_path, overrides, message):
    run_dir = finished_run("emotion", "plots=none")
    out = tmp_path / "analysis"
    with pytest.raises(ConfigError) as info:
        run_errors(compose_analyze(["task=errors", f"run_dir={run_dir}", *overrides], out), out)
    assert str(info.value).startswith(message)
    assert not (out / "summary.md").exists()


def test_a_folder_that_is_no_finished_run_is_refused(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train.log").write_text("")
    out = tmp_path / "analysis"
    with pytest.raises(ConfigError, match=r"is not a finished training run \(no metrics.json, model, .hydra"):
        run_report(compose_analyze(["task=report", f"run_dir={tmp_path / 'half'}"], out), out)


def test_report_puts_the_run_beside_the_anchors_with_its_figures_and_errors(finished_run, tmp_path):
    run_dir = finished_run("sem_eval_2018", "plots=default")
    out = tmp_path / "analysis"
    report = run_report(compose_analyze(["task=report", f"run_dir={run_dir}", "report.top_errors=3"], out), out)
    text = report.read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert "| SpanEmo (Alhuzali & Ananiadou 2021) | BERT-base | 0.601 | 0.713 | 0.578 |" in text
    jaccard, f1_micro = metrics["test/jaccard_tuned"], metrics["test/f1_micro_tuned"]
    assert f"| **this run** | bert | **{jaccard:.3f}** | **{f1_micro:.3f}** |" in text
    assert "## Calibration" in text and "## Per-label F1" in text
    for png in (run_dir / "plots").glob("*.png"):
        assert f"![{png.stem}](plots/{png.name})" in text and is_png(out / "plots" / png.name)
    assert text.count("\n| val |") + text.count("\n| test |") >= 3  # the top errors table (and the ECE rows)
    with pytest.raises(ConfigError, match="already holds a report.md"):
        run_report(compose_analyze(["task=report", f"run_dir={run_dir}"], out), out)


def test_report_copies_no_file_a_figure_links_to(finished_run, tmp_path, caplog):
    """A run folder from elsewhere whose plots/ holds a link to a file of this machine: the report skips it."""
    run_dir = finished_run("emotion", "plots=none")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the report")
    (run_dir / "plots").mkdir(exist_ok=True)
    (run_dir / "plots" / "curves.png").symlink_to(secret)
    out = tmp_path / "analysis"
    report = run_report(compose_analyze(["task=report", f"run_dir={run_dir}"], out), out)
    assert not (out / "plots" / "curves.png").exists() and "curves.png" not in report.read_text()
    assert any("skipped" in r.getMessage() and "curves.png" in r.getMessage() for r in caplog.records)


def test_the_command_names_its_folder_after_the_run_and_refuses_data_with_a_run_task(finished_run, tmp_path):
    run_dir = finished_run("emotion", "plots=none")
    out = run("analyze.py", "task=report", f"run_dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (folder,) = (tmp_path / "outputs" / "analysis" / "report").iterdir()
    assert folder.name.startswith(f"{run_dir.name}_") and (folder / "report.md").is_file()
    assert out.stdout.strip().splitlines()[-1] == f"wrote {folder / 'report.md'}"
    refused = run("analyze.py", "task=errors", f"run_dir={run_dir}", "data=go_emotions", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip().startswith("error: task=errors reads the run's own data")
    assert not list((tmp_path / "outputs" / "analysis" / "errors").iterdir())  # no folder for the refusal
    with pytest.raises(ConfigError, match=r"task=errors reads the run's own data and model: drop data= "):
        check_task_inputs("errors", str(run_dir), [f"run_dir={run_dir}", "data=go_emotions"])
    with pytest.raises(ConfigError, match=r"run_dir= is for task=errors or task=report; task=umap reads data="):
        check_task_inputs("umap", str(run_dir), [f"run_dir={run_dir}"])
