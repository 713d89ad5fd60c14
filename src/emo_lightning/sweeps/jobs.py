"""A multirun's job folders read into one table: each job's overrides and seed, status (finished: metrics.json;
failed or pruned: failure.json; else unfinished), figures, W&B run and Optuna trial."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from emo_lightning.utils.run_folder import (
    METRICS_FILE,
    PRUNED_TYPE,
    TRIAL_FILE,
    failure_summary,
    wandb_run_id,
)

DEFAULTS_LABEL = "(defaults)"  # a job that overrides nothing
COMMON_LABEL = "(the common overrides only)"  # a job that overrides only what every job of the sweep does

PRUNING_OVERRIDE = "+callbacks.optuna_pruning="  # the sweeper's per-trial callback: not part of a configuration


def _job_overrides(job_dir: Path) -> tuple[list[str], int | None]:
    """A job's command-line overrides without seed and hydra.*, and its seed."""
    overrides = OmegaConf.load(job_dir / ".hydra" / "overrides.yaml") or []
    config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    kept = [o for o in overrides if not o.startswith(("seed=", "hydra.", "+hydra.", "~hydra.", PRUNING_OVERRIDE))]
    return kept, config.get("seed")


def _wandb_run(job_dir: Path) -> dict:
    """The job's newest W&B run id (None without one), and whether it exists only offline (no `run-*-<id>` folder)."""
    run_id = wandb_run_id(job_dir)
    if run_id is None:
        return {"wandb_run": None, "wandb_offline": None}
    return {"wandb_run": run_id, "wandb_offline": not any((job_dir / "wandb").glob(f"run-*-{run_id}"))}


def collect(sweep_dirs: list[Path]) -> tuple[pd.DataFrame, list[str]]:
    """One row per job folder under `sweep_dirs` (config, seed, status, job, W&B run id and whether only offline,
    monitor, every logged metric; NaN if none; error, error_type, error_step of a failed job), and the overrides
    common to all jobs. Other files in a job folder are ignored. A job's config is the
    rest of its overrides: what the sweep varied. Its status: "failed" with a failure.json (its metrics are not read),
    else "finished" with a metrics.json, else "unfinished"."""
    rows = []
    for sweep_dir in sweep_dirs:
        if not Path(sweep_dir).is_dir():
            raise FileNotFoundError(f"{sweep_dir} is not a folder: give the multirun's folder, outputs/multirun/<time>")
        for hydra_dir in sorted(Path(sweep_dir).glob("**/.hydra/overrides.yaml")):
            job_dir = hydra_dir.parent.parent
            overrides, seed = _job_overrides(job_dir)
            name = job_dir.relative_to(sweep_dir).as_posix()
            if len(sweep_dirs) > 1:
                name = f"{Path(sweep_dir).name}/{name}"
            row = {"overrides": overrides, "seed": seed, "status": "unfinished", "job": str(job_dir), "name": name}
            row.update(_wandb_run(job_dir), error=None, error_type=None, error_step=None)
            metrics_file = job_dir / METRICS_FILE
            row.update(_optuna_trial(job_dir))
            if (failure := failure_summary(job_dir)) is not None:
                row.update(status="failed", **{k: v for k, v in failure.items() if k != "record"})
                if row["error_type"] == PRUNED_TYPE:  # stopped by the search's pruner: not a failure
                    row["status"] = "pruned"
            elif metrics_file.exists():
                result = json.loads(metrics_file.read_text())
                row.update(status="finished", monitor=result.get("monitor"))
                row.update(result.get("metrics", {}))
            rows.append(row)
    if not rows:
        raise FileNotFoundError(
            f"no jobs under {', '.join(map(str, sweep_dirs))}: a job folder holds .hydra/overrides.yaml"
        )
    common = [o for o in rows[0]["overrides"] if all(o in row["overrides"] for row in rows)]
    for row in rows:
        varied = [o for o in row["overrides"] if o not in common]
        row["config"] = " ".join(varied) or (COMMON_LABEL if common else DEFAULTS_LABEL)
        row["overrides"] = " ".join(row["overrides"])
    runs = pd.DataFrame(rows)
    runs["error_step"] = runs["error_step"].astype("Int64")
    first, last = ["config", "seed", "status"], ["error_type", "error", "error_step"]
    return runs[[*first, *[c for c in runs.columns if c not in first + last], *last]], common


def _optuna_trial(job_dir: Path) -> dict:
    """The Optuna trial a job ran (number and state, from the `emo_optuna` sweeper's optuna_trial.json), if any."""
    trial_file = job_dir / TRIAL_FILE
    if not trial_file.exists():
        return {}
    trial = json.loads(trial_file.read_text())
    return {"trial": trial.get("number"), "trial_state": trial.get("state")}


def failed_jobs(sweep_dirs: list[Path]) -> tuple[int, int]:
    """How many jobs under `sweep_dirs` failed, and how many jobs there are ((0, 0) without a job)."""
    try:
        runs, _ = collect(sweep_dirs)
    except FileNotFoundError:
        return 0, 0
    return int((runs["status"] == "failed").sum()), len(runs)
