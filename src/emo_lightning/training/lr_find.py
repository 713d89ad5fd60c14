"""`python train.py tune=lr_find`: Lightning's learning-rate finder (`Tuner.lr_find`) on the composed run.

`num_training` steps from `min_lr` to `max_lr` on a throwaway trainer and module built from the config (the run's
data, model, loss, optimizer, precision and seed; no loggers, callbacks, checkpoints, validation or compile), the
smoothed training loss recorded at each rate. The suggestion is Lightning's (the steepest descent of that loss),
rounded to 3 significant digits, and becomes `optimizer.lr`, the rate every preset sets. Lightning's finder gives
every optimizer group one rate; here each group keeps its `lr_scale` (layer-wise decay, `param_groups=layer_decay`),
so the rate searched is the base rate of the top layers and the head, as `optimizer.lr` is.

`tune.apply=false` (the default): lr_find.png and lr_find.json in the run folder, the suggestion and the command that
trains with it on the console, and no training. `tune.apply=true`: then training with it in the same command, on a
model and data built afresh from the seed, so the run is the one that command would make.
"""

from __future__ import annotations

import gc
import logging
import math
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from emo_lightning.analysis.run_figures import plot_lr_find
from emo_lightning.training.setup import build_classifier, build_trainer
from emo_lightning.utils.console import command_for, no_datasets_bars
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import render
from emo_lightning.utils.run_folder import LR_FIND_FIGURE, LR_FIND_FILE, read_lr_find, write_lr_find

log = logging.getLogger(__name__)

MODES = ("exponential", "linear")
NEVER = 2**31 - 1  # check_val_every_n_epoch of the search's trainer: it never validates


class LearningRateSearch:
    """conf/tune/lr_find.yaml: the finder's settings (Lightning's `Tuner.lr_find` arguments) and what follows it.

    Args:
        min_lr: the first rate tried.
        max_lr: the last rate tried (the search stops earlier once the loss diverges).
        num_training: steps of the search, one rate each.
        mode: how the rate grows from step to step: exponential (evenly on a log scale) or linear.
        early_stop_threshold: stop once the smoothed loss exceeds this many times its best; None: never.
        apply: train with the suggestion in the same command; false: print it and the command, and stop.
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 0.1,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        apply: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(
                f"tune.mode={render(mode)} must be one of {' / '.join(MODES)}: e.g. tune.mode=exponential"
            )
        if min_lr >= max_lr:
            raise ConfigError(
                f"tune.min_lr={render(min_lr)} must be below tune.max_lr={render(max_lr)}: "
                "e.g. tune.min_lr=1e-7 tune.max_lr=0.1"
            )
        self.min_lr, self.max_lr, self.num_training, self.mode = min_lr, max_lr, num_training, mode
        self.early_stop_threshold = early_stop_threshold
        self.apply = apply

    def run(self, cfg: DictConfig) -> tuple[list[float], list[float], float | None]:
        """The search on the config's data and a fresh model: (rates, smoothed losses, suggestion or None)."""
        trainer = build_trainer(  # only the search bounds its steps; it never validates
            cfg,
            callbacks=[],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_epochs=-1,
            max_steps=self.num_training,
            val_check_interval=None,
            check_val_every_n_epoch=NEVER,
        )
        if trainer.world_size > 1:
            raise ConfigError(
                f"tune=lr_find searches on one device, and this trainer has {trainer.world_size}: "
                "add trainer.devices=1 (then train on several with the optimizer.lr it suggests)"
            )
        L.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data)
        with no_datasets_bars():
            datamodule.setup("fit")
        module, _ = build_classifier(cfg, datamodule)
        with group_scales_kept():
            finder = Tuner(trainer).lr_find(
                module,
                datamodule=datamodule,
                min_lr=self.min_lr,
                max_lr=self.max_lr,
                num_training=self.num_training,
                mode=self.mode,
                early_stop_threshold=self.early_stop_threshold,
                update_attr=False,  # the rate goes into the config (optimizer.lr), not into the module
            )
        rates, losses = [float(r) for r in finder.results["lr"]], [float(x) for x in finder.results["loss"]]
        steepest = finder.suggestion()
        del finder, trainer, module, datamodule  # the run that follows (tune.apply=true) builds its own
        gc.collect()
        return rates, losses, None if steepest is None else float(f"{steepest:.3g}")


@contextmanager
def group_scales_kept() -> Iterator[None]:
    """Every optimizer step inside steps each group at its `lr` × `lr_scale` (`ParameterGroups`), and leaves `lr`
    as it was: Lightning's finder sets one rate for all groups, and this keeps the layer-wise decay under it."""
    kept: dict[int, list] = {}

    def scale(optimizer, args, kwargs) -> None:
        kept[id(optimizer)] = [group["lr"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * group.get("lr_scale", 1.0)

    def restore(optimizer, args, kwargs) -> None:
        for group, lr in zip(optimizer.param_groups, kept.pop(id(optimizer), []), strict=False):
            group["lr"] = lr

    handles = [register_optimizer_step_pre_hook(scale), register_optimizer_step_post_hook(restore)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def learning_rate_search(cfg: DictConfig) -> LearningRateSearch | None:
    """`tune=lr_find`'s search, its values and their combination with the run checked (before any work); None
    without `tune=`."""
    if not cfg.get("tune"):
        return None
    search = instantiate(cfg.tune)
    if cfg.trainer.get("fast_dev_run"):
        raise ConfigError(
            "tune=lr_find needs training steps, and trainer.fast_dev_run runs one batch: drop debug=fdr "
            "(or trainer.fast_dev_run)"
        )
    if cfg.get("ckpt_path"):
        raise ConfigError(
            f"tune=lr_find searches from the model's starting weights, and ckpt_path={cfg.ckpt_path} restores another "
            "run's training state, its rate included: drop one of them"
        )
    if search.apply and "optimizer.lr" in override_keys(user_overrides()):
        raise ConfigError(
            "tune.apply=true sets optimizer.lr to the rate it finds, and the command line sets optimizer.lr too: "
            "drop one of them"
        )
    if cfg.resume and not search.apply:
        raise ConfigError(
            f"resume={cfg.resume} holds a learning-rate search (tune=lr_find), not a training run: train with the "
            f"command in its {LR_FIND_FILE}"
        )
    return search


def tuned_rate(search: LearningRateSearch, cfg: DictConfig, output_dir: Path) -> float | None:
    """Run the search, write lr_find.json / lr_find.png, say the suggestion and its command; the rate training
    takes (tune.apply=true; a resumed run: the one its search found), or None: no training (tune.apply=false)."""
    if cfg.resume:
        record = read_lr_find(output_dir)
        if record and record.get("suggestion") is not None:
            log.info(
                "resume: optimizer.lr=%s, the rate this run's search found (%s)", record["suggestion"], LR_FIND_FILE
            )
            return record["suggestion"]
    configured = float(cfg.optimizer.lr)
    started = time.monotonic()
    rates, losses, suggestion = search.run(cfg)
    command = train_command(user_overrides(), suggestion)
    write_lr_find(
        output_dir,
        {
            "suggestion": suggestion,  # what optimizer.lr gets: Lightning's steepest descent, 3 significant digits
            "configured_lr": configured,
            "applied": search.apply and suggestion is not None,
            "command": command,
            "min_lr": search.min_lr,
            "max_lr": search.max_lr,
            "num_training": search.num_training,
            "mode": search.mode,
            "early_stop_threshold": search.early_stop_threshold,
            "lowest_loss_rate": lowest_loss_rate(rates, losses),  # for a look at the curve; not what is applied
            "steps": len(rates),
            "stopped_early": len(rates) < search.num_training,
            "seconds": round(time.monotonic() - started, 1),
            "rates": rates,
            "losses": losses,
        },
    )
    plot_lr_find(rates, losses, suggestion, configured, search.mode == "exponential", output_dir / LR_FIND_FIGURE)
    ended = f"stopped at {rates[-1]:.3g}, the loss diverging" if len(rates) < search.num_training else "done"
    if suggestion is None:
        raise ConfigError(
            f"tune=lr_find ran {len(rates)} steps ({ended}) and found no rate: too few finite losses; widen "
            f"tune.min_lr / tune.max_lr or raise tune.num_training (the curve: {output_dir / LR_FIND_FIGURE})"
        )
    log.info(
        "lr_find: %d steps from %g to %g (%s, %s): suggests optimizer.lr=%s (the config has %s); %s and %s in %s",
        len(rates),
        search.min_lr,
        search.max_lr,
        search.mode,
        ended,
        render(suggestion),
        render(configured),
        LR_FIND_FIGURE,
        LR_FIND_FILE,
        output_dir,
    )
    if not search.apply:
        log.info("train with it: %s", command)
        return None
    log.info("tune.apply=true: training with optimizer.lr=%s, as %s would", render(suggestion), command)
    return suggestion


def lowest_loss_rate(rates: list[float], losses: list[float]) -> float | None:
    """The rate of the lowest finite smoothed loss (past the first 10, which the suggestion skips too), or None."""
    finite = [(loss, rate) for rate, loss in zip(rates[10:], losses[10:], strict=True) if math.isfinite(loss)]
    return min(finite)[1] if finite else None


def user_overrides() -> list[str]:
    """The command line's overrides of this job (Hydra's `overrides.task`); none outside a Hydra job."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def override_keys(overrides: list[str]) -> set[str]:
    return {override.split("=", 1)[0].lstrip("+~") for override in overrides}


def train_command(overrides: list[str], rate: float | None) -> str:
    """`python train.py <the overrides> optimizer.lr=<rate>` (`emo-train …` when installed), the search's own
    overrides (tune=, tune.*) and any earlier optimizer.lr left out."""

    def kept(override: str) -> bool:
        key = override.split("=", 1)[0].lstrip("+~")
        return key != "optimizer.lr" and key.split(".")[0] != "tune"

    words = [command_for("train.py"), *(shlex.quote(o) for o in overrides if kept(o))]
    if rate is not None:
        words.append(f"optimizer.lr={render(rate)}")
    return " ".join(words)
