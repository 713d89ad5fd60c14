"""The sweep summary: mean ± std over seeds per configuration, from job folders laid out as Hydra writes them."""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from emo_lightning.sweeps.significance import student_t_quantile
from emo_lightning.sweeps.summary import (
    SweepSummary,
    collect,
    default_metrics,
    failed_jobs,
    lead_significance,
    main,
    summarize,
    write_report,
)

CE_ON_MULTI_LABEL = "loss=ce needs single-label data, but this dataset is multi-label: use loss=bce or loss=focal"


def make_job(
    sweep: Path, num: int, overrides: list[str], seed: int, metrics: dict | None, failure: dict | None = None
) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides + [f"seed={seed}"]), job / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"seed": seed, "threshold": 0.5}), job / ".hydra" / "config.yaml")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"monitor": "val/jaccard", "metrics": metrics}))
    if failure is not None:  # as the training task writes it under -m
        (job / "failure.json").write_text(json.dumps(failure))


def config_error(step: int | None = None) -> dict:
    return {"error": CE_ON_MULTI_LABEL, "type": "ConfigError", "step": step}


def hydra_config(sweep: Path):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})


@pytest.fixture
def sweep(tmp_path) -> Path:
    """loss=bce (seeds 0, 1), loss=focal (seeds 0, 1 and an unfinished 2), the defaults (seed 0), an unfinished asl."""

    def m(jaccard_tuned: float) -> dict:
        return {
            "val/jaccard": jaccard_tuned - 0.01,
            "val/jaccard_tuned": jaccard_tuned,
            "val/f1_micro_tuned": 0.7,
            "val/f1_macro_tuned": 0.5,
            "val/auroc_micro": 0.9,
            "test/jaccard_tuned": 0.1,
        }

    make_job(tmp_path, 0, ["loss=bce"], 0, m(0.60))
    make_job(tmp_path, 1, ["loss=bce"], 1, m(0.62))
    make_job(tmp_path, 2, ["loss=focal"], 0, m(0.58))
    make_job(tmp_path, 3, ["loss=focal"], 1, m(0.56))
    make_job(tmp_path, 4, ["loss=focal"], 2, None)
    make_job(tmp_path, 5, ["hydra.verbose=true"], 0, m(0.65))
    make_job(tmp_path, 6, ["loss=asl"], 0, None)
    return tmp_path


def test_configs_ranked_with_mean_and_std_over_seeds(sweep):
    runs, common = collect([sweep])
    assert common == []
    metrics = default_metrics(runs)
    assert metrics == ["val/jaccard_tuned", "val/f1_micro_tuned", "val/f1_macro_tuned", "val/auroc_micro"]
    summary = summarize(runs, metrics)
    assert list(summary.index) == ["(defaults)", "loss=bce", "loss=focal"]
    assert summary.loc["loss=bce", "val/jaccard_tuned mean"] == pytest.approx(0.61)
    assert summary.loc["loss=focal", "val/jaccard_tuned std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert math.isnan(summary.loc["(defaults)", "val/jaccard_tuned std"])
    assert summary.loc["loss=focal", "seeds"] == "0,1"
    assert summary.loc["loss=focal", "unfinished"] == 1 and summary.loc["loss=bce", "unfinished"] == 0


def test_report_files(sweep):
    report = write_report([sweep])
    text = report.read_text()
    assert "| `loss=bce` | 0,1 | 0.6100 ± 0.0141 |" in text
    assert "| `(defaults)` | 0 | 0.6500 |" in text
    assert "2 job(s) without metrics.json" in text and "loss=asl" not in text
    assert (sweep / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert len((sweep / "summary.csv").read_text().splitlines()) == 1 + 7


def test_cli_names_the_known_metrics_for_a_typo(sweep, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(sweep), "--metrics", "val/jacard"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "val/jacard not logged" in err and "val/jaccard_tuned" in err and len(err.strip().splitlines()) == 1


def test_cli_on_a_folder_without_jobs(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "no jobs under" in capsys.readouterr().err


def test_overrides_common_to_every_job_are_said_once(tmp_path):
    metrics = {"val/accuracy": 0.9, "val/f1_macro": 0.8}
    make_job(tmp_path, 0, ["data=emotion", "loss=ce"], 0, metrics)
    make_job(tmp_path, 1, ["data=emotion", "loss=focal"], 0, metrics)
    runs, common = collect([tmp_path])
    assert common == ["data=emotion"] and sorted(runs["config"]) == ["loss=ce", "loss=focal"]
    assert "Common to every job: `data=emotion`." in write_report([tmp_path], ["val/accuracy"]).read_text()


def test_failed_jobs_listed_apart_with_their_reason(sweep):
    make_job(sweep, 10, ["loss=ce"], 42, None, config_error())
    make_job(sweep, 7, ["loss=bce"], 2, None, {"error": "loss is nan", "type": "FloatingPointError", "step": 120})
    runs, _ = collect([sweep])
    status = {Path(job).name: s for job, s in zip(runs["job"], runs["status"])}
    assert {name for name, s in status.items() if s == "failed"} == {"7", "10"}
    assert {name for name, s in status.items() if s == "unfinished"} == {"4", "6"}
    assert len(status) == 9 and list(status.values()).count("finished") == 5
    summary = summarize(runs, ["val/jaccard_tuned"])
    assert "loss=ce" not in summary.index  # its only job failed
    assert summary.loc["loss=bce", ["jobs", "failed", "unfinished"]].tolist() == [2, 1, 0]
    assert summary.loc["loss=focal", ["jobs", "failed", "unfinished"]].tolist() == [2, 0, 1]

    text = write_report([sweep]).read_text()
    table, failed = text.split("## Failed jobs")
    assert "| `loss=bce` | 0,1 | 0.6100 ± 0.0141 |" in table and "loss=ce" not in table
    assert "2 failed job(s) are left out" in table and "2 job(s) without metrics.json (still running" in table
    assert failed.strip().splitlines() == [
        "- `7` (`loss=bce`, seed 2): FloatingPointError at step 120: loss is nan",
        f"- `10` (`loss=ce`, seed 42): ConfigError: {CE_ON_MULTI_LABEL}",
    ]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 9
    by_job = {Path(row["job"]).name: row for row in rows}
    assert by_job["10"]["status"] == "failed" and by_job["10"]["error"] == CE_ON_MULTI_LABEL
    assert by_job["7"]["error_step"] == "120" and by_job["7"]["error_type"] == "FloatingPointError"
    assert by_job["0"]["status"] == "finished" and by_job["0"]["error"] == ""
    assert by_job["4"]["status"] == "unfinished"
    assert (sweep / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_csv_has_status_and_error_columns_without_failures(sweep):
    write_report([sweep])
    header = (sweep / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["config", "seed", "status"] and "error" in header


def test_cli_exits_1_after_the_summary_when_a_job_failed(sweep, capsys):
    make_job(sweep, 7, ["loss=ce"], 42, None, config_error())
    with pytest.raises(SystemExit) as exit_info:
        main([str(sweep)])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert "## Failed jobs" in out and "| `loss=bce` |" in out
    assert err.strip() == f"1 of 8 jobs failed (see {sweep / 'summary.md'})"


def test_cli_exits_0_without_failures(sweep, capsys):
    main([str(sweep)])
    assert "## Failed jobs" not in capsys.readouterr().out


def test_a_sweep_where_every_job_failed_still_gets_a_summary(tmp_path, capsys):
    make_job(tmp_path, 0, ["data=go_emotions", "loss=ce"], 42, None, config_error())
    make_job(tmp_path, 1, ["data=go_emotions", "loss=ce"], 43, None, config_error(step=5))
    make_job(tmp_path, 2, ["data=go_emotions", "loss=bce"], 42, None)  # still running
    text = write_report([tmp_path], ["val/accuracy"]).read_text()
    assert "No job finished: 3 job(s), nothing to compare." in text
    assert "Common to every job: `data=go_emotions`." in text
    assert "failed job(s) are left out" not in text and "1 job(s) without metrics.json" in text
    assert f"- `1` (`loss=ce`, seed 43): ConfigError at step 5: {CE_ON_MULTI_LABEL}" in text
    assert not (tmp_path / "summary.png").exists()
    assert len((tmp_path / "summary.csv").read_text().splitlines()) == 1 + 3
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 1 and "2 of 3 jobs failed" in capsys.readouterr().err


def test_a_sweep_where_no_job_finished_nor_failed_has_no_summary(tmp_path):
    make_job(tmp_path, 0, ["loss=ce"], 42, None)
    with pytest.raises(ValueError, match="no validation metrics found"):
        write_report([tmp_path])
    assert not (tmp_path / "summary.md").exists()


def test_callback_exits_1_when_a_job_failed(sweep, caplog):
    make_job(sweep, 7, ["loss=ce"], 42, None, config_error())
    with caplog.at_level(logging.INFO, logger="emo_lightning.sweeps.summary"), pytest.raises(SystemExit) as exit_info:
        SweepSummary().on_multirun_end(hydra_config(sweep))
    assert exit_info.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"1 of 8 jobs failed (see {sweep / 'summary.md'})"]
    assert "## Failed jobs" in (sweep / "summary.md").read_text()


def test_callback_exits_1_even_when_the_summary_cannot_be_written(sweep, caplog):
    make_job(sweep, 7, ["loss=ce"], 42, None, config_error())
    with pytest.raises(SystemExit) as exit_info:
        SweepSummary(metrics=["val/jacard"]).on_multirun_end(hydra_config(sweep))
    assert exit_info.value.code == 1
    assert "no sweep summary: metric(s) val/jacard not logged" in caplog.text
    assert "1 of 8 jobs failed (see failure.json in the job folders of" in caplog.text


def test_callback_returns_without_failures(sweep):
    assert SweepSummary().on_multirun_end(hydra_config(sweep)) is None
    assert (sweep / "summary.md").exists()


def test_a_failure_without_a_readable_reason_is_still_listed(tmp_path):
    make_job(tmp_path, 0, ["loss=bce"], 0, {"val/accuracy": 0.9})
    make_job(tmp_path, 1, ["loss=ce"], 0, None, {"error": "out of memory"})
    make_job(tmp_path, 2, ["loss=ce"], 1, None)
    (tmp_path / "2" / "failure.json").write_text('{"error": "cut sho')  # the job was killed while writing it
    text = write_report([tmp_path]).read_text()
    assert "- `1` (`loss=ce`, seed 0): error: out of memory" in text
    assert "- `2` (`loss=ce`, seed 1): error: failure.json is unreadable (" in text


def make_seeds(sweep: Path, first: int, overrides: list[str], accuracies: list[float]) -> None:
    for seed, accuracy in enumerate(accuracies):
        make_job(sweep, first + seed, overrides, seed, {"val/accuracy": accuracy, "val/f1_macro": accuracy - 0.1})


def test_a_lead_far_beyond_the_spread_over_seeds_is_beyond_seed_noise(tmp_path):
    make_seeds(tmp_path, 0, ["lr=1e-4"], [0.70, 0.71, 0.69])
    make_seeds(tmp_path, 3, ["lr=1e-3"], [0.60, 0.61, 0.59])
    runs, _ = collect([tmp_path])
    verdicts = lead_significance(runs, summarize(runs, ["val/accuracy"]), "val/accuracy")
    row = verdicts.loc["lr=1e-3"]
    assert row["best"] == "lr=1e-4" and row["verdict"] == "beyond seed noise"
    # by hand: both stds 0.01 over 3 seeds, so Welch's df = 4, and t(0.975, 4) = 2.7764451052 (a t table)
    half_width = 2.7764451052 * math.sqrt(0.01**2 / 3 + 0.01**2 / 3)
    assert row["difference"] == pytest.approx(0.10)
    assert row["low"] == pytest.approx(0.10 - half_width) and row["high"] == pytest.approx(0.10 + half_width)
    text = write_report([tmp_path]).read_text()
    assert "## Is the lead beyond seed noise?" in text and "Welch's t-interval over seeds" in text
    assert "| `lr=1e-3` | 3 vs 3 | +0.1000 | [+0.0773, +0.1227] | beyond seed noise |" in text


def test_a_lead_smaller_than_the_spread_over_seeds_is_within_seed_noise(tmp_path):
    make_seeds(tmp_path, 0, ["lr=1e-4"], [0.700, 0.650, 0.750])
    make_seeds(tmp_path, 3, ["lr=3e-4"], [0.695, 0.655, 0.740])
    make_job(tmp_path, 6, ["lr=1e-2"], 0, {"val/accuracy": 0.3, "val/f1_macro": 0.2})
    runs, _ = collect([tmp_path])
    verdicts = lead_significance(runs, summarize(runs, ["val/accuracy"]), "val/accuracy")
    assert verdicts["verdict"].to_dict() == {"lr=3e-4": "within seed noise", "lr=1e-2": "cannot tell: one seed"}
    # by hand: Welch's df from the two variances, its t quantile, then mean difference ± t * standard error
    var_best = statistics.variance([0.700, 0.650, 0.750]) / 3
    var_other = statistics.variance([0.695, 0.655, 0.740]) / 3
    df = (var_best + var_other) ** 2 / (var_best**2 / 2 + var_other**2 / 2)
    half_width = student_t_quantile(0.975, df) * math.sqrt(var_best + var_other)
    row = verdicts.loc["lr=3e-4"]
    difference = 0.7 - (0.695 + 0.655 + 0.740) / 3
    assert row["difference"] == pytest.approx(difference)
    assert row["low"] == pytest.approx(difference - half_width)
    assert row["high"] == pytest.approx(difference + half_width)
    assert row["low"] < 0 < row["high"]
    assert math.isnan(verdicts.loc["lr=1e-2", "low"])
    text = write_report([tmp_path]).read_text()
    assert "| `lr=1e-2` | 3 vs 1 | +0.4000 |  | cannot tell: one seed |" in text


# a t table for whole df; for fractional df (Welch's), the root of mpmath's regularized incomplete beta function
@pytest.mark.parametrize(
    ("df", "table"),
    [(1, 12.7062047362), (2, 4.3026527297), (10, 2.2281388520), (1.3, 7.5005293256), (3.7, 2.8675207072)],
)
def test_t_quantiles_match_a_t_table(df, table):
    assert student_t_quantile(0.975, df) == pytest.approx(table, abs=1e-9)


def test_a_one_seed_sweep_says_once_that_it_cannot_tell(tmp_path):
    make_job(tmp_path, 0, ["lr=1e-4"], 0, {"val/accuracy": 0.7})
    make_job(tmp_path, 1, ["lr=1e-3"], 0, {"val/accuracy": 0.6})
    make_job(tmp_path, 2, ["lr=1e-2"], 0, {"val/accuracy": 0.5})
    runs, _ = collect([tmp_path])
    verdicts = lead_significance(runs, summarize(runs, ["val/accuracy"]), "val/accuracy")
    assert verdicts["verdict"].tolist() == ["cannot tell: one seed"] * 2
    text = write_report([tmp_path]).read_text()
    section = text.split("## Is the lead beyond seed noise?")[1]
    assert section.strip() == (
        "Cannot tell: every configuration has one seed; add `seed=0,1,2` to the sweep to compare them."
    )


def test_a_single_configuration_has_no_lead_to_judge(tmp_path):
    make_seeds(tmp_path, 0, ["lr=1e-4"], [0.70, 0.71])
    assert "## Is the lead beyond seed noise?" not in write_report([tmp_path]).read_text()


def test_each_job_links_to_its_w_and_b_run(tmp_path):
    make_seeds(tmp_path, 0, ["lr=1e-4"], [0.70, 0.71])
    make_job(tmp_path, 7, ["lr=1e-3"], 0, None, {"error": "loss is nan", "type": "FloatingPointError", "step": 3})
    (tmp_path / "0" / "wandb" / "offline-run-20261201_101010-abc123").mkdir(parents=True)
    (tmp_path / "1" / "wandb" / "offline-run-20261130_090000-old111").mkdir(parents=True)  # an older run: not it
    (tmp_path / "1" / "wandb" / "run-20261201_111111-def456").mkdir(parents=True)
    (tmp_path / "7" / "wandb" / "offline-run-20261201_101010-fail99").mkdir(parents=True)
    # what else a job or sweep folder may hold (an Optuna sweep's files, W&B's own files) is ignored
    (tmp_path / "7" / "optuna.json").write_text('{"trial": 7}')
    (tmp_path / "1" / "wandb" / "debug.log").write_text("")
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    text = write_report([tmp_path]).read_text()
    by_job = {Path(row["job"]).name: row for row in csv.DictReader((tmp_path / "summary.csv").open())}
    assert by_job["0"]["wandb_run"] == "abc123" and by_job["0"]["wandb_offline"] == "True"
    assert by_job["1"]["wandb_run"] == "def456" and by_job["1"]["wandb_offline"] == "False"
    assert by_job["7"]["wandb_run"] == "fail99" and by_job["7"]["status"] == "failed"
    assert "- `lr=1e-4`: seed 0 `abc123` (offline), seed 1 `def456`" in text
    assert "- `7` (`lr=1e-3`, seed 0, W&B `fail99` offline): FloatingPointError at step 3: loss is nan" in text


def test_no_w_and_b_lines_without_w_and_b_runs(sweep):
    assert "W&B" not in write_report([sweep]).read_text()
    assert all(row["wandb_run"] == "" for row in csv.DictReader((sweep / "summary.csv").open()))


def test_an_optuna_search_lists_its_trials_and_marks_the_best(tmp_path):
    """Trials as the emo_optuna sweeper leaves them: optuna_trial.json per job, optuna_best.yaml in the sweep."""
    states = ["COMPLETE", "FAIL", "COMPLETE", "PRUNED"]
    for number, state in enumerate(states):
        metrics = {"val/accuracy": 0.5 + 0.1 * number} if state == "COMPLETE" else None
        failure = None
        if state == "FAIL":
            failure = config_error()
        elif state == "PRUNED":
            failure = {"error": "pruned at step 20: val/accuracy=0.3100", "type": "TrialPruned", "step": 20}
        make_job(tmp_path, number, [f"optimizer.lr={number}e-4"], 42, metrics, failure)
        trial = {"number": number, "params": {"optimizer.lr": number * 1e-4}, "state": state, "value": None}
        (tmp_path / str(number) / "optuna_trial.json").write_text(json.dumps(trial))
    best = {
        "study_name": "emotion_optuna",
        "direction": "maximize",
        "optimized_metric": "val/accuracy",
        "best_trial": 2,
        "best_value": 0.7,
        "best_params": {"optimizer.lr": 2e-4},
        "best_overrides": ["optimizer.lr=2e-4"],
        "trials": {"complete": 2, "fail": 1, "pruned": 1},
    }
    OmegaConf.save(OmegaConf.create(best), tmp_path / "optuna_best.yaml")
    summary = write_report([tmp_path], ["val/accuracy"]).read_text()
    section = summary.split("## Optuna trials", 1)[1]
    assert (
        "Study `emotion_optuna`, maximize val/accuracy: 2 complete, 1 fail, 1 pruned. Best: trial 2 "
        "(val/accuracy 0.7000), `optimizer.lr=2e-4` (★)." in section
    )
    rows = [line for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows == [
        "| 0 | complete | 0.5000 | `optimizer.lr=0e-4` |",
        "| 1 | fail |  | `optimizer.lr=1e-4` |",
        "| 2 ★ | complete | 0.7000 | `optimizer.lr=2e-4` |",
        "| 3 | pruned |  | `optimizer.lr=3e-4` |",
    ]
    assert failed_jobs([tmp_path]) == (1, 4)  # a pruned trial is not a failed job
