"""Fine-tune an encoder on an emotion dataset: `python train.py model=squeezebert data=go_emotions`.

Continue a run that stopped: `python train.py resume=outputs/runs/<time>`.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from emo_lightning.cli.resume import resume_argv, slurm_job_suffix

OmegaConf.register_new_resolver("slurm_job_suffix", slurm_job_suffix, replace=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from emo_lightning.cli.jobs import run_training_job  # heavy imports after Hydra has parsed the command line
    from emo_lightning.utils.console import quiet_libraries

    quiet_libraries()  # one line per event, through Hydra's handlers
    return run_training_job(cfg)


def cli() -> None:
    """`resume=<run dir>` becomes that run's own command line, then Hydra runs it."""
    sys.argv = resume_argv(sys.argv, Path(__file__).parent / "conf")
    main()


if __name__ == "__main__":
    from emo_lightning.cli.pages import help_on_request
    from emo_lightning.cli.runner import run_cli

    help_on_request(__file__)  # --help: the page of conf/ for people (Hydra's own: --hydra-help)

    run_cli(cli)
