"""Why a fit ended, for metrics.json's `stopped` and the end line: a trainer limit, early stopping, or another stop."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason


def why_stopped(trainer: L.Trainer) -> dict:
    """{"reason": max_steps | max_epochs | early_stopping | max_time | stopped, "epochs": epochs trained (the last
    one may be cut short), "step": optimizer steps}; early stopping adds its monitor and patience, and its criterion
    when that is not the patience running out (e.g. a non-finite metric)."""
    fit = trainer.fit_loop
    done = {"epochs": trainer.current_epoch, "step": trainer.global_step}
    if fit.max_steps not in (None, -1) and trainer.global_step >= fit.max_steps:
        return {"reason": "max_steps", **done}
    if fit.max_epochs not in (None, -1) and trainer.current_epoch >= fit.max_epochs:
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
