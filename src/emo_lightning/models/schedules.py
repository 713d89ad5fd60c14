"""Learning-rate schedules with warmup, sized from the trainer's step count at run time."""

from __future__ import annotations

import torch
from transformers import SchedulerType, get_scheduler

from emo_lightning.utils.errors import ConfigError


def warmup_schedule(
    optimizer: torch.optim.Optimizer, num_training_steps: int, name: str = "linear", warmup_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers' `get_scheduler(name)` with warmup over `warmup_ratio` of all steps."""
    if not 0 <= warmup_ratio < 1:
        raise ConfigError(f"scheduler.warmup_ratio={warmup_ratio} must be in [0, 1)")
    if name not in {s.value for s in SchedulerType}:
        raise ConfigError(f"scheduler.name={name} is not known: use one of {', '.join(s.value for s in SchedulerType)}")
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=int(warmup_ratio * num_training_steps),
        num_training_steps=num_training_steps,
    )
