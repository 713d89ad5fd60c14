"""The names of what a run folder holds, and the readers of its small records: one home for each.

A run (`outputs/runs/<time>/`, or a multirun job's folder) holds `metrics.json` (the final figures, written by
`train`), `model/` (the exported model, `models.folder`; its `classifier.json`), `checkpoints/`, `predictions/`,
`errors.csv`, `plots/`, and `onnx/` with `parity.json` once exported (`inference.backends`). A job that failed
leaves `failure.json` (`cli.jobs`); a search's trial leaves `optuna_trial.json` (`sweeps.study`); `tune=lr_find`
leaves `lr_find.json` and `lr_find.png` (`training.lr_find`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from emo_lightning.utils.atomic import atomic_write_text

METRICS_FILE = "metrics.json"
FAILURE_FILE = "failure.json"  # {"type": <exception class>, "message": <one line>}
PRUNED_TYPE = "TrialPruned"  # failure.json's type for a trial its search pruned (optuna.TrialPruned)
TRIAL_FILE = "optuna_trial.json"  # a search trial's number, parameters, state and value
BEST_FILE = "optuna_best.yaml"  # a search's best trial so far, in the sweep folder
CHECKPOINTS = "checkpoints"
MODEL_DIR = "model"
PREDICTIONS_DIR = "predictions"
ERRORS_FILE = "errors.csv"
RUN_ARTIFACTS = (CHECKPOINTS, METRICS_FILE, MODEL_DIR, PREDICTIONS_DIR)  # what makes a folder hold a run
LR_FIND_FILE = "lr_find.json"  # a learning-rate search's rates, smoothed losses, suggestion and command
LR_FIND_FIGURE = "lr_find.png"  # its curve: loss against rate, the suggestion marked


def write_lr_find(run_dir: Path, record: dict) -> None:
    """lr_find.json; a loss that is not finite (a diverged step) is written as null, so the file stays JSON."""
    losses = [loss if math.isfinite(loss) else None for loss in record["losses"]]
    atomic_write_text(Path(run_dir) / LR_FIND_FILE, json.dumps({**record, "losses": losses}, indent=2))


def read_lr_find(run_dir: Path) -> dict | None:
    """A run folder's lr_find.json, or None where it has none (or the file is not a JSON object)."""
    try:
        record = json.loads((Path(run_dir) / LR_FIND_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_failure(run_dir: Path) -> dict | None:
    """A job folder's failure record, or None where it has none (or the file is not a JSON object)."""
    summary = failure_summary(run_dir)
    return summary["record"] if summary else None


def failure_summary(run_dir: Path) -> dict | None:
    """None without a failure.json; else its `record` (a dict, None if unreadable) and, for tables, `error` (one
    line: the reason, or why the file is unreadable), `error_type` (the exception class) and `error_step`."""
    path = Path(run_dir) / FAILURE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        reason = f"{FAILURE_FILE} is unreadable ({err})"
        return {"record": None, "error": reason, "error_type": None, "error_step": None}
    shown = record if isinstance(record, dict) else {"error": record}
    step = shown.get("step")
    return {
        "record": record if isinstance(record, dict) else None,
        "error": " ".join(str(shown.get("error", "")).split()) or "no reason given",
        "error_type": shown.get("type"),
        "error_step": step if isinstance(step, int) and not isinstance(step, bool) else None,
    }


def was_pruned(run_dir: Path) -> bool:
    """Whether the job in `run_dir` was stopped by its search's pruner: an outcome, not a failure."""
    failure = read_failure(run_dir)
    return failure is not None and failure.get("type") == PRUNED_TYPE


def wandb_run_id(run_dir: Path) -> str | None:
    """The W&B run id of a run dir's newest W&B run (its folder `wandb/[offline-]run-<time>-<id>`), if it has one."""
    runs = sorted((Path(run_dir) / "wandb").glob("*run-*-*"), key=lambda p: p.name.split("run-", 1)[1])
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None


def write_metrics(
    path: Path,
    metrics: dict[str, float],
    checkpoint: str | None,
    monitor: str,
    per_label_f1: dict[str, dict[str, float]],
    thresholds: list[float] | None,
    notes: list[str] = (),
    temperatures: list[float] | None = None,
    label_names: list[str] | None = None,
    examples: dict[str, int] | None = None,
    tuned_on: str | None = None,
    stopped: dict | None = None,
) -> None:
    """metrics.json; thresholds keyed by label name (label order differs between datasets and runs); `examples`:
    how many texts of each split every figure of that split saw (the whole split, or what limit_*/debug= read);
    `tuned_on`: the split the thresholds were tuned on (None: not tuned, e.g. thresholds=none); `stopped`: why training
    ended (`training.stopping.why_stopped`)."""
    record = {
        "monitor": monitor,
        "checkpoint": checkpoint,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "per_label_f1": per_label_f1,
        "thresholds": dict(zip(label_names, thresholds, strict=True)) if thresholds is not None else None,
        "tuned_on": tuned_on,
        "examples": examples,
        "temperatures": temperatures,  # calibration, fitted on validation; None: uncalibrated
        "notes": list(notes),
        "stopped": stopped,
    }
    atomic_write_text(path, json.dumps(record, indent=2))
