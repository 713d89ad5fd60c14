"""The sweep summary: mean ± std over seeds per configuration, from job folders laid out as Hydra writes them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from emo_lightning.sweeps import collect, default_metrics, main, summarize, write_report


def make_job(sweep: Path, num: int, overrides: list[str], seed: int, metrics: dict | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides + [f"seed={seed}"]), job / ".hydra" / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"seed": seed, "threshold": 0.5}), job / ".hydra" / "config.yaml")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"monitor": "val/jaccard", "metrics": metrics}))


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
