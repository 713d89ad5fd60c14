"""`train(cfg)`: validate the config, set the run up, fit, and finish it (one evaluation, the artifacts); with
`tune=lr_find`, the learning-rate search first (`training.lr_find`), and training only with `tune.apply=true`."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, open_dict

from emo_lightning.training.distributed import is_extra_rank
from emo_lightning.training.finish import finish
from emo_lightning.training.loggers import finish_wandb_run
from emo_lightning.training.lr_find import learning_rate_search, tuned_rate
from emo_lightning.training.setup import check_run_dir, set_up, start_line
from emo_lightning.training.stopping import why_stopped
from emo_lightning.utils.config import validate_config
from emo_lightning.utils.console import HeldConsole

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit; then evaluate the best checkpoint once on validation and test (thresholds tuned and calibration
    temperatures fitted on validation) and write metrics.json, model/, predictions/, errors.csv and the plots.
    Returns the final figures (rank 0; {} on the other DDP ranks, and after a search that does not train)."""
    validate_config(cfg)
    search = learning_rate_search(cfg)  # tune=lr_find: its values checked here too, before any work
    output_dir = Path(cfg.paths.output_dir)
    check_run_dir(output_dir, resuming=bool(cfg.resume) or is_extra_rank())  # rank 0 owns the folder
    if search is not None:
        rate = tuned_rate(search, cfg, output_dir)
        if rate is None:  # tune.apply=false: the suggestion and its command are the result
            return {}
        with open_dict(cfg):
            cfg.optimizer.lr = rate
    held = HeldConsole()  # the setup's lines reach the console after the start line (train.log gets them in order)
    first = None
    try:
        run = set_up(cfg, output_dir)
        first = (
            start_line(cfg, run.datamodule, run.module, run.trainer, output_dir) if run.trainer.is_global_zero else None
        )
    finally:
        held.release(first, log)
    try:
        run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=run.start_from, weights_only=True)
        return finish(run, cfg, output_dir, stopped=why_stopped(run.trainer))
    finally:
        finish_wandb_run()
