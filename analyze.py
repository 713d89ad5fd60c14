"""Look at a dataset, or at what a frozen encoder makes of it: `python analyze.py task=explore data=go_emotions`.

Tasks: explore (labels, lengths, duplicates; tokenizer only), baseline (frozen features + logistic regression),
umap (a 2-D map of frozen features). Each writes figures and a summary.md to outputs/analysis/<task>/<data>_<time>;
see docs/ANALYSIS.md.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from emo_lightning.utils.errors import ConfigError, did_you_mean

TASKS = {  # task → "module:function", imported only when that task runs
    "explore": "emo_lightning.analysis.explore:run_explore",
    "baseline": "emo_lightning.analysis.baseline:run_baseline",
    "umap": "emo_lightning.analysis.umap_map:run_umap",
}


def task_function(task: str):
    """The function that runs `task`, `fn(cfg, output_dir) -> summary path`."""
    if task not in TASKS:
        close = did_you_mean(str(task), TASKS)
        hint = f"did you mean task={close}? " if close else ""
        raise ConfigError(f"task={task} is not an analysis task: {hint}use one of {', '.join(TASKS)}")
    from importlib import import_module

    module, name = TASKS[task].split(":")
    return getattr(import_module(module), name)


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    from emo_lightning.cli import exit_on_bad_input  # imported after Hydra parsed the command line

    with exit_on_bad_input():  # one line and exit 2 for bad input, before anything is written
        run = task_function(cfg.task)
        summary = run(cfg, Path(cfg.paths.output_dir))
    sys.stdout.write(f"wrote {summary}\n")


if __name__ == "__main__":
    from emo_lightning.cli import run_cli

    run_cli(main)
