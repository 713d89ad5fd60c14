"""Why a fit ended, for metrics.json's `stopped` and the end line: a trainer limit, early stopping, or another stop;
and early stopping whose decision survives a resume."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason


class EarlyStopping(LightningEarlyStopping):
    """Lightning's EarlyStopping, resumable. A run it stopped stays stopped when resumed (Lightning does not keep
    `trainer.should_stop`: the resumed run trained on to its next validation); the configured patience wins over the
    checkpoint's (Lightning's `load_state_dict` took the saved one, so a resume with more patience had none), and a
    larger one lets a stopped run train on."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience
        exhausted = self.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED
        if exhausted and self.wait_count < patience:  # more patience than it ran out of: not stopped any more
            self.stopping_reason, self.stopping_reason_message, self.stopped_epoch = (
                EarlyStoppingReason.NOT_STOPPED,
                None,
                0,
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.stopping_reason is not EarlyStoppingReason.NOT_STOPPED:
            trainer.should_stop = True  # resumed after this callback stopped the run: it stops before any batch


def why_stopped(trainer: L.Trainer) -> dict:
    """{"reason": max_steps | max_epochs | early_stopping | max_time | stopped, "epochs": epochs trained (the last
    one may be cut short), "step": optimizer steps}; early stopping adds its monitor and patience, and its criterion
    when that is not the patience running out (e.g. a non-finite metric). Counted from the optimizer steps: the
    trainer's epoch counter after a fit depends on where a resumed run's checkpoint was saved."""
    fit, step = trainer.fit_loop, trainer.global_step
    per_epoch = steps_per_epoch(trainer)
    epochs = math.ceil(step / per_epoch) if per_epoch else trainer.current_epoch
    done = {"epochs": epochs, "step": step}
    if fit.max_steps not in (None, -1) and step >= fit.max_steps:
        return {"reason": "max_steps", **done}
    if fit.max_epochs not in (None, -1) and per_epoch and step >= fit.max_epochs * per_epoch:
        return {"reason": "max_epochs", **done}
    for callback in trainer.early_stopping_callbacks:
        if callback.stopping_reason is not EarlyStoppingReason.NOT_STOPPED:
            record = {"reason": "early_stopping", **done, "monitor": callback.monitor, "patience": callback.patience}
            if callback.stopping_reason is not EarlyStoppingReason.PATIENCE_EXHAUSTED:
                record["criterion"] = callback.stopping_reason.value
            return record
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is not None and timer.time_remaining() is not None and timer.time_remaining() <= 0:
        return {"reason": "max_time", **done}
    return {"reason": "stopped", **done}  # a callback set trainer.should_stop


def steps_per_epoch(trainer: L.Trainer) -> int | None:
    """Optimizer steps in a whole epoch (Lightning steps on an epoch's last batch too); None for an endless loader."""
    batches = trainer.num_training_batches
    if not math.isfinite(batches) or batches < 1:
        return None
    return math.ceil(batches / trainer.accumulate_grad_batches)


def stopped_phrase(stopped: dict) -> str:
    """The end line's words for `why_stopped`'s record, e.g. "trainer.max_epochs reached after 3 epochs (18 steps)"."""
    epochs, steps = stopped["epochs"], stopped["step"]
    when = f"after {epochs} epoch{'s' * (epochs != 1)} ({steps} step{'s' * (steps != 1)})"
    reason = stopped["reason"]
    if reason == "early_stopping":
        why = stopped.get("criterion", "").replace("_", " ")
        why = why or f"{stopped['monitor']} did not improve in {stopped['patience']} validations"
        return f"early stopping {when}: {why}"
    if reason in ("max_steps", "max_epochs", "max_time"):
        return f"trainer.{reason} reached {when}"
    return f"a callback stopped the run {when}"
