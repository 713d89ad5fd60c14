"""`OptunaPruning`: a Lightning callback that reports each validation of a fit to its Optuna trial, and stops a trial
the study's pruner judges bad by raising `optuna.TrialPruned` (the job then records it in its failure.json, and the
`emo_optuna` sweeper tells the trial PRUNED).

The `emo_optuna` sweeper adds it to every trial with `hydra.sweeper.pruning=true`. The trial's process reaches the
study through its storage (a journal file or a database, not an in-memory one), and the pruner is the one the
sweeper kept in the study. Only rank 0 talks to the storage; under DDP it broadcasts the decision, so every rank
stops together.
"""

from __future__ import annotations

import logging

import lightning as L
import optuna
from lightning.pytorch.trainer.states import TrainerFn

from emo_lightning.sweeps.study import load_trial
from emo_lightning.utils.errors import ConfigError

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """Report `monitor` after each validation of a fit to trial `trial_id`, at step `trainer.global_step`; raise
    `optuna.TrialPruned` when the study's pruner says so. A null `monitor` watches the task's headline metric."""

    def __init__(self, storage: str, study_name: str, trial_id: int, monitor: str | None = None) -> None:
        super().__init__()
        self.storage, self.study_name, self.trial_id, self.monitor = storage, study_name, trial_id, monitor
        self._trial: optuna.trial.Trial | None = None  # loaded at the first validation, on rank 0 only

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        step = trainer.global_step
        value = self._value(trainer)
        verdict = self._report(value, step) if trainer.is_global_zero else False
        if trainer.strategy.broadcast(verdict, src=0):
            message = f"pruned at step {step}: {self.monitor}={value:.4f}"
            log.info("trial %s (study %s) %s", self.trial_id, self.study_name, message)
            raise optuna.TrialPruned(message)

    def _value(self, trainer: L.Trainer) -> float:
        if self.monitor not in trainer.callback_metrics:
            logged = ", ".join(sorted(k for k in trainer.callback_metrics if k.startswith("val/")))
            raise ConfigError(
                f"OptunaPruning monitors {self.monitor}, which validation did not log: set its monitor to one of "
                f"{logged or 'the metrics validation logs'}"
            )
        return float(trainer.callback_metrics[self.monitor])

    def _report(self, value: float, step: int) -> bool:
        """Report `value` at `step` (a step reported before, by a run that resumed, keeps its value); whether the
        study's pruner stops the trial."""
        if self._trial is None:
            self._trial = load_trial(self.storage, self.study_name, self.trial_id)
        self._trial.report(value, step)
        return self._trial.should_prune()
