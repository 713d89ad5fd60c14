"""`emo-train` / `python train.py`: fine-tune an encoder on an emotion dataset (`model=squeezebert data=go_emotions`).

Continue a run that stopped: `emo-train resume=outputs/runs/<time>`.
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from emo_lightning.cli.pages import CONF_DIR, help_on_request
from emo_lightning.cli.resume import resume_argv, slurm_job_suffix
from emo_lightning.cli.runner import run_cli

OmegaConf.register_new_resolver("slurm_job_suffix", slurm_job_suffix, replace=True)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from emo_lightning.cli.jobs import run_training_job  # heavy imports after Hydra has parsed the command line
    from emo_lightning.utils.console import quiet_libraries

    quiet_libraries()  # one line per event, through Hydra's handlers
    return run_training_job(cfg)


def cli() -> None:
    """`resume=<run dir>` becomes that run's own command line, then Hydra runs it."""
    sys.argv = resume_argv(sys.argv, CONF_DIR)
    main()


def run() -> None:
    help_on_request("train.py")  # --help: the page of conf/ for people (Hydra's own: --hydra-help)
    run_cli(cli)
