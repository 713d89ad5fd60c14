"""`emo-analyze` / `python analyze.py`: look at a dataset, or at what a frozen encoder makes of it, e.g.
`python analyze.py task=explore data=go_emotions`.

Tasks on a dataset: explore (labels, lengths, duplicates; tokenizer only), baseline (frozen features + logistic
regression), umap (a 2-D map of frozen features). Tasks on a finished run (`run_dir=`): errors (the error analysis
on any split), report (its metrics, figures and the published anchors in one report.md). Each writes to
outputs/analysis/<task>/<data or run>_<time>; see docs/ANALYSIS.md.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from emo_lightning.analysis.tasks import check_task_inputs, output_subject, task_function

OmegaConf.register_new_resolver("analysis_subject", output_subject, replace=True)  # names the output folder


@hydra.main(version_base="1.3", config_path="../conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from emo_lightning.cli.runner import exit_on_bad_input  # imported after Hydra parsed the command line

    # one line and exit 2 for bad input, before anything is written; the folder Hydra made for the job goes
    with exit_on_bad_input(Path(cfg.paths.output_dir)):
        run = task_function(cfg.task)
        check_task_inputs(cfg.task, cfg.run_dir, list(HydraConfig.get().overrides.task))
        summary = run(cfg, Path(cfg.paths.output_dir))
    sys.stdout.write(f"wrote {summary}\n")


def run() -> None:
    from emo_lightning.cli.pages import help_on_request
    from emo_lightning.cli.runner import run_cli

    help_on_request("analyze.py")  # --help: the page of conf/ for people (Hydra's own: --hydra-help)
    run_cli(main)
