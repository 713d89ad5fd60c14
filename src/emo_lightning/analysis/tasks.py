"""The tasks of `analyze.py`: which function runs each, and which inputs go with which task."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from emo_lightning.utils.errors import ConfigError, did_you_mean

TASKS = {  # task → "module:function", imported only when that task runs
    "explore": "emo_lightning.analysis.explore:run_explore",
    "baseline": "emo_lightning.analysis.baseline:run_baseline",
    "umap": "emo_lightning.analysis.umap_map:run_umap",
    "errors": "emo_lightning.analysis.error_analysis:run_errors",
    "report": "emo_lightning.analysis.report:run_report",
}
RUN_TASKS = ("errors", "report")  # they read a finished run: its own data and model, never data= or model=


def task_function(task: str):
    """The function that runs `task`, `fn(cfg, output_dir) -> the path of what it wrote`."""
    if task not in TASKS:
        close = did_you_mean(str(task), TASKS)
        hint = f"did you mean task={close}? " if close else ""
        raise ConfigError(f"task={task} is not an analysis task: {hint}use one of {', '.join(TASKS)}")
    module, name = TASKS[task].split(":")
    return getattr(import_module(module), name)


def check_task_inputs(task: str, run_dir, overrides: list[str]) -> None:
    """run_dir= goes with the run tasks only; they take the run's own data and model, so data=/model= are refused."""
    if task in RUN_TASKS:
        given = [o.split("=", 1)[0] for o in overrides if o.split("=", 1)[0].lstrip("+~") in ("data", "model")]
        if given:
            raise ConfigError(
                f"task={task} reads the run's own data and model: drop {' and '.join(given)}= (the run_dir decides)"
            )
    elif run_dir is not None:
        raise ConfigError(f"run_dir= is for task={' or task='.join(RUN_TASKS)}; task={task} reads data= (drop run_dir)")


def output_subject(run_dir, data: str) -> str:
    """What names the output folder: the run folder's name for the run tasks, else the dataset option."""
    return Path(str(run_dir)).name if run_dir else data
