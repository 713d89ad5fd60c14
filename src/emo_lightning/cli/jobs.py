"""One Hydra job of train.py: train, and turn how it ended into what the user sees.

- A single run: bad input → `ConfigError` (the CLI prints one line, exit 2); a run that stopped (a signal, a
  non-finite loss) → one line with the exact `resume=` command, exit 128 + signal or 1.
- A job of a multirun: any failure is logged in one line and recorded in the job's `failure.json`, and the sweep
  goes on to its next job; the sweep summary lists the failed jobs and the multirun exits non-zero at its end.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from emo_lightning.cli.resume import requeued_slurm_job
from emo_lightning.cli.runner import exit_if_bad_input, remove_unstarted_folder
from emo_lightning.train import train
from emo_lightning.training.checkpointing import RunInterrupted, RunStopped
from emo_lightning.training.distributed import one_job_of_ranks
from emo_lightning.training.loggers import finish_wandb_run
from emo_lightning.utils.atomic import atomic_write_text
from emo_lightning.utils.console import command_for
from emo_lightning.utils.errors import config_error_in, describe
from emo_lightning.utils.run_folder import CHECKPOINTS, FAILURE_FILE, PRUNED_TYPE

log = logging.getLogger("emo_lightning")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def resume_command(run_dir: str | Path) -> str:
    return f"{command_for('train.py')} resume={run_dir}"


def one_line(err: BaseException) -> str:
    """The reason a job failed, in one line: a bad input's own message, else the exception's first line."""
    message = describe(err)
    if message is not None:
        return message
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def record_failure(output_dir: Path, err: BaseException) -> None:
    config_error = config_error_in(err)
    failure = {
        "error": one_line(err),
        "type": type(config_error or err).__name__,
        "step": getattr(err, "step", None),
    }
    atomic_write_text(output_dir / FAILURE_FILE, json.dumps(failure, indent=2))


def run_training_job(cfg: DictConfig) -> float | None:
    """train(cfg) as a job: the value a sweeper optimizes, or None."""
    output_dir = Path(cfg.paths.output_dir)
    if not cfg.resume and requeued_slurm_job() and (output_dir / CHECKPOINTS).is_dir():
        with open_dict(cfg):  # a job SLURM requeued (a submitit sweep's, say) continues its own run
            cfg.resume = str(output_dir)
        log.info("requeued SLURM job: resuming %s", output_dir)
    (output_dir / FAILURE_FILE).unlink(missing_ok=True)  # a resumed job that failed before starts clean
    try:
        with one_job_of_ranks():
            metrics = train(cfg)
    except RunInterrupted as err:  # the user (or the scheduler) stopped it: the whole sweep stops too
        log.error("%s: continue with `%s`", err, resume_command(output_dir))
        if in_multirun():
            record_failure(output_dir, err)
        sys.exit(err.exit_code)
    except RunStopped as err:
        if in_multirun():
            log.error("job failed: %s", err)
            record_failure(output_dir, err)
            return None
        log.error("error: %s", err)
        sys.exit(err.exit_code)
    except Exception as err:
        if type(err).__name__ == PRUNED_TYPE:  # the search's pruner stopped this trial: an outcome, not an error
            log.info("trial pruned: %s", err)
            if in_multirun():
                record_failure(output_dir, err)
            finish_wandb_run()
            return None
        if not in_multirun():
            if describe(err) is not None and not cfg.resume:
                remove_unstarted_folder(output_dir)
            exit_if_bad_input(err)  # bad input: one line, exit 2 (before Hydra reports the job's overrides)
            raise  # anything else is a bug: its traceback
        if describe(err) is None:
            log.error("job failed with a traceback:\n%s", "".join(traceback.format_exception(err)))
        log.error("job failed: %s", one_line(err))
        record_failure(output_dir, err)
        finish_wandb_run()
        return None
    return metrics.get(cfg.optimized_metric) if cfg.optimized_metric else None
