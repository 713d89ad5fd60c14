"""Runs that survive: `last.ckpt` always holds the last state, signals stop at a step boundary with a checkpoint,
a non-finite loss stops the run and keeps the last good checkpoint.

- `AtomicCheckpointIO` writes every checkpoint to a temporary name beside it, then renames it (a kill during a
  save leaves the previous checkpoint whole), and loads with `weights_only=True` (nothing in a file runs code).
- `LastCheckpoint` saves `last.ckpt` after every validation, every N optimizer steps and/or M minutes, at the end of
  training, and when SIGTERM or SIGINT arrives (then it stops with `RunInterrupted`); always after an optimizer step
  (never mid gradient accumulation) but at the end of training. Under SLURM it moves
  Lightning's SIGUSR1 requeue (hpc checkpoint + `scontrol requeue`) to the next step boundary. It also carries the
  random number generators' states, so a resumed run draws the same dropout masks as one that never stopped.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import _load as load_checkpoint_file
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from emo_lightning.utils.atomic import PARTIAL, atomic_path

log = logging.getLogger(__name__)

LAST = "last.ckpt"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REQUEUE_SIGNAL = signal.SIGUSR1  # SLURMEnvironment's default requeue_signal (sbatch --signal=SIGUSR1@90)


class RunStopped(RuntimeError):
    """The run stopped before its end; the message is one line, `exit_code` what the process should return."""

    exit_code = 1

    def __init__(self, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.step = step


class RunInterrupted(RunStopped):
    """SIGTERM or SIGINT: a checkpoint was saved at a step boundary; exit 128 + the signal number, as shells do."""

    def __init__(self, message: str, step: int, signum: int) -> None:
        super().__init__(message, step)
        self.exit_code = 128 + signum


class NonFiniteLoss(RunStopped):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file in the checkpoint's own folder, fsync, rename; load with weights_only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint_file(path, map_location=map_location, weights_only=True)


def rng_states() -> dict[str, Any]:
    """The generators a training step draws from (dropout: torch; any user code: Python's), as plain data."""
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class LastCheckpoint(Checkpoint):
    """Keeps `<dirpath>/last.ckpt` the last state of training.

    Args:
        dirpath: the run's checkpoint folder.
        every_n_train_steps: also save every this many optimizer steps (None: not by steps).
        every_n_minutes: also save when this many minutes passed since the last save (None: not by time).
        handle_signals: SIGTERM / SIGINT save at the next step boundary and stop the run (a second SIGINT
            stops at once).
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_train_steps: int | None = None,
        every_n_minutes: float | None = 10.0,
        handle_signals: bool = True,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.every_n_minutes = every_n_minutes
        self.handle_signals = handle_signals
        self._last_save = time.monotonic()
        self._saved_step = -1
        self._signal: int | None = None
        self._requeue_requested = False
        self._previous_handlers: dict[int, Any] = {}
        self._rng_to_restore: dict[str, Any] | None = None
        self._step_before_batch = -1
        self._stepped = True  # whether the last training batch ended with an optimizer step
        self._save_at_next_step = False

    @property
    def path(self) -> Path:
        return self.dirpath / LAST

    # -- state carried in every checkpoint -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict.get("rng")

    # -- when to save -------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._rng_to_restore is not None:  # after setup and sanity checks: the next draw is the next step's
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
        if self.handle_signals:
            self._install_signal_handlers()
        self._last_save = time.monotonic()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        self._step_before_batch = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).all():
            raise NonFiniteLoss(
                f"the training loss is {float(loss)} at step {trainer.global_step} (epoch {trainer.current_epoch}): "
                f"lower optimizer.lr or check the data{self._kept()}",
                step=trainer.global_step,
            )
        # Mid gradient accumulation a checkpoint would lack the gradients accumulated so far (a resumed run would
        # step without them): every save and stop waits for the batch that ends with an optimizer step.
        self._stepped = trainer.global_step != self._step_before_batch
        if not self._stepped or validation_follows(trainer):
            return  # a checkpoint now would make a resumed run skip that validation: save at its end instead
        self._act_on_signals(trainer)
        due_by_steps = self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0
        due_by_time = self.every_n_minutes and time.monotonic() - self._last_save >= 60 * self.every_n_minutes
        if due_by_steps or due_by_time or self._save_at_next_step:
            self.save(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if not self._stepped:  # a validation mid-accumulation: save (and stop) after the step that ends it
            self._save_at_next_step = True
            return
        self.save(trainer)  # after ModelCheckpoint (Lightning runs checkpoint callbacks last, in order): best is in
        self._act_on_signals(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)
        self._restore_signal_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_signal_handlers()

    def _act_on_signals(self, trainer: L.Trainer) -> None:
        if self._requeue_requested:  # SLURM's warning signal: Lightning's requeue, here at a step boundary
            self._requeue_requested = False
            self._previous_handlers[REQUEUE_SIGNAL](REQUEUE_SIGNAL, None)
        if self._signal is not None:
            self._stop(trainer)

    def save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._saved_step and self.path.exists():
            return  # this state is on disk already
        trainer.save_checkpoint(self.path)
        self._saved_step = trainer.global_step
        self._save_at_next_step = False
        self._last_save = time.monotonic()

    def _kept(self) -> str:
        if self._saved_step < 0:
            return "; no checkpoint was saved before it"
        return f"; the last good checkpoint is kept ({self.path}, step {self._saved_step})"

    # -- signals --------------------------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)
        requeue = signal.getsignal(REQUEUE_SIGNAL)
        if callable(requeue):  # Lightning's SLURM auto-requeue: saves hpc_ckpt_*.ckpt, then `scontrol requeue`
            self._previous_handlers[REQUEUE_SIGNAL] = requeue
            signal.signal(REQUEUE_SIGNAL, self._on_requeue_signal)

    def _on_requeue_signal(self, signum: int, frame) -> None:
        """Defer Lightning's requeue to the next step boundary, so its checkpoint is a whole step's state."""
        self._requeue_requested = True
        log.warning("%s received: requeueing at the next step boundary", signal.Signals(signum).name)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _on_signal(self, signum: int, frame) -> None:
        if self._signal is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._signal = signum
        log.warning("%s received: saving a checkpoint at the next step boundary", signal.Signals(signum).name)

    def _stop(self, trainer: L.Trainer) -> None:
        self.save(trainer)
        name = signal.Signals(self._signal).name
        raise RunInterrupted(
            f"stopped by {name} at step {trainer.global_step}; checkpoint {self.path}",
            trainer.global_step,
            self._signal,
        )


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after this training batch (its own rule; a resumed run would skip a
    validation that was due when its checkpoint was saved)."""
    epoch_loop = trainer.fit_loop.epoch_loop
    return bool(epoch_loop._should_check_val_fx(trainer.fit_loop._data_fetcher))


def newest_checkpoint(folder: Path) -> Path | None:
    """The most recently written complete checkpoint under `folder` (last.ckpt, a SLURM hpc_ckpt_*, an epoch's)."""
    candidates = [p for p in folder.rglob("*.ckpt") if not p.name.endswith(PARTIAL)]
    return max(candidates, key=lambda p: p.stat().st_mtime_ns, default=None)
