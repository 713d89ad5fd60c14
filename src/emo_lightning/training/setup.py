"""Everything before fit, from the config: the data, the LightningModule and the spec of its model folder, the
callbacks, loggers and Trainer, and the checks that refuse a bad combination before any work starts."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from emo_lightning.data.datamodule import TextClassificationDataModule
from emo_lightning.models.backbone import check_max_length, position_limit
from emo_lightning.models.classifier import EmotionClassifier
from emo_lightning.models.folder import ClassifierSpec
from emo_lightning.models.heads import PooledHead
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.models.thresholds import ThresholdTuner
from emo_lightning.training.checkpointing import AtomicCheckpointIO, newest_checkpoint
from emo_lightning.training.distributed import is_extra_rank
from emo_lightning.training.run_plots import RunPlots
from emo_lightning.utils.atomic import remove_partials
from emo_lightning.utils.console import command_for, no_datasets_bars
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, configure_kernels, resolve_precision, uses_gpu
from emo_lightning.utils.run_folder import RUN_ARTIFACTS, wandb_run_id

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One training run as `set_up` built it."""

    trainer: L.Trainer
    datamodule: TextClassificationDataModule
    module: EmotionClassifier
    spec: ClassifierSpec  # what the exported model folder will carry; `finish` adds thresholds and temperatures
    tuner: ThresholdTuner | None  # multi-label: tunes thresholds on validation after fit
    plots: RunPlots | None
    start_from: str | None  # the checkpoint fit continues from (resume=, ckpt_path=), else None


def set_up(cfg: DictConfig, output_dir: Path) -> Run:
    """Everything before fit: data, model, callbacks, loggers, trainer (in this order: the data decides the head)."""
    start_from = checkpoint_to_start_from(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    with no_datasets_bars():  # tokenizing takes seconds; the start line says what was loaded
        datamodule.setup("fit")  # label names and task type are needed to build the model
    module, spec = build_classifier(cfg, datamodule)
    callbacks = instantiate_callbacks(cfg.callbacks, module.monitor)
    loggers = instantiate_group(cfg.logger, id=wandb_run_id(output_dir) if cfg.resume else None)
    check_monitors(callbacks, module)
    plots = instantiate(cfg.plots) if cfg.get("plots") else None
    if plots is not None:
        callbacks.append(plots)
    tuner = instantiate(cfg.thresholds) if datamodule.multi_label else None
    if not loggers:  # a learning-rate monitor has nowhere to write (Lightning refuses the pair)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.compile:
        module.network.backbone.compile(dynamic=True)  # in place: state_dict keys stay those of the model
    trainer = build_trainer(cfg, callbacks=callbacks, logger=loggers or False, **early_validation(cfg, datamodule))
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return Run(trainer, datamodule, module, spec, tuner, plots, start_from)


def build_classifier(cfg: DictConfig, datamodule) -> tuple[EmotionClassifier, ClassifierSpec]:
    """The LightningModule for this data, and the spec the exported model folder will carry."""
    backbone = instantiate(cfg.model, tokenizer=datamodule.tokenizer)
    check_max_length(backbone.config, datamodule.tokenizer, datamodule.max_length)
    head_args = {"hidden_size": backbone.config.hidden_size, "num_labels": datamodule.num_labels}
    head_class = get_class(cfg.head._target_)
    if issubclass(head_class, PooledHead):  # what the head takes from the data, and whether its input fits
        head_args |= head_class.data_arguments(datamodule.tokenizer, datamodule.label_names)
        positions = position_limit(backbone.config, datamodule.tokenizer.pad_token_id)
        head_class.check_input(positions, head_args, datamodule.max_length)
    head = instantiate(cfg.head, **head_args)
    loss = instantiate(
        cfg.loss,
        multi_label=datamodule.multi_label,
        label_counts=datamodule.train_label_counts(),
        num_examples=len(datamodule.labeled.splits["train"]),
    )
    module = EmotionClassifier(
        EmotionNetwork(backbone, head),
        loss,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        label_names=datamodule.label_names,
        multi_label=datamodule.multi_label,
        threshold=cfg.threshold,
        param_groups=instantiate(cfg.param_groups) if cfg.get("param_groups") else None,
    )
    spec = ClassifierSpec(
        label_names=datamodule.label_names,
        multi_label=datamodule.multi_label,
        threshold=cfg.threshold,
        max_length=datamodule.max_length,
        head={**OmegaConf.to_container(cfg.head, resolve=True), **head_args},
    )
    return module, spec


def build_trainer(cfg: DictConfig, **kwargs) -> L.Trainer:
    """The configured Trainer, with `precision=auto` resolved for this machine and its kernel settings applied;
    checkpoints are written atomically and loaded with `weights_only=True`."""
    on_gpu = uses_gpu(cfg.trainer.accelerator)
    precision = resolve_precision(cfg.trainer.precision, Hardware.detect(), on_gpu)
    configure_kernels(on_gpu)
    plugins = [AtomicCheckpointIO()]
    if launched_by_submitit():  # submitit requeues the job itself: Lightning must not requeue it too
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return instantiate(cfg.trainer, precision=precision, plugins=plugins, **kwargs)


def launched_by_submitit() -> bool:
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and SLURMEnvironment.detect()


def instantiate_group(group: DictConfig | None, **defaults) -> list:
    """Instantiate every node of a config group; `defaults` fill keys the config leaves null."""
    objects = []
    for node in (group or {}).values():
        runtime = {k: v for k, v in defaults.items() if k in node and node[k] is None}
        objects.append(instantiate(node, **runtime))
    return objects


def instantiate_callbacks(group: DictConfig | None, monitor: str) -> list:
    """The callbacks; a null `monitor` watches the task's headline metric, a null `mode` follows the metric."""
    callbacks = []
    for node in (group or {}).values():
        runtime = {}
        if "monitor" in node:
            runtime["monitor"] = node.monitor or monitor
            if "mode" in node and node.mode is None:
                runtime["mode"] = monitor_mode(runtime["monitor"])
        callbacks.append(instantiate(node, **runtime))
    return callbacks


def monitor_mode(monitor: str) -> str:
    """Whether a larger value of `monitor` is better: every metric logged here is, except losses."""
    return "min" if monitor.rsplit("/", 1)[-1].endswith("loss") else "max"


def check_monitors(callbacks: list, module: EmotionClassifier) -> None:
    """A callback watching a metric that validation never logs would fail only after the first epoch; one that
    maximizes a loss would keep the worst model."""
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if not monitor:
            continue
        name = type(callback).__name__
        if monitor not in module.metric_names:
            raise ConfigError(
                f"{name} monitors {monitor}, which this task does not log: use one of {', '.join(module.metric_names)}"
            )
        mode = getattr(callback, "mode", None)
        if mode is not None and mode != monitor_mode(monitor):
            raise ConfigError(
                f"{name} monitors {monitor} with mode={mode}, which would keep the worst model: "
                f"use mode={monitor_mode(monitor)} (or leave mode null to follow the metric)"
            )


def check_run_dir(output_dir: Path, resuming: bool) -> None:
    """A new run never writes into a folder that holds a run's artifacts (only `resume=` continues one)."""
    found = [name for name in RUN_ARTIFACTS if (output_dir / name).exists()]
    if found and not resuming:
        raise ConfigError(
            f"{output_dir} already holds a run ({', '.join(found)}): continue it with "
            f"`{command_for('train.py')} resume={output_dir}`, or give a new hydra.run.dir"
        )


def checkpoint_to_start_from(cfg: DictConfig) -> str | None:
    """`resume=`: the run's newest checkpoint (None if it saved none yet); `ckpt_path=`: that file, which must exist."""
    if cfg.resume:
        run_dir = Path(cfg.paths.output_dir)
        for folder in (run_dir, run_dir / "checkpoints", run_dir / "plots") if not is_extra_rank() else ():
            for leftover in remove_partials(folder):
                log.info("removed %s, left by a write that was killed", leftover)
        newest = newest_checkpoint(run_dir)
        log.info("resuming %s from %s", cfg.paths.output_dir, newest or "the start (no checkpoint saved yet)")
        return str(newest) if newest else None
    if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist: give a .ckpt file, or resume=<run dir>")
    return cfg.ckpt_path


def early_validation(cfg: DictConfig, datamodule) -> dict:
    """A run whose trainer.max_steps ends before the first validation (once an epoch) validates at its last step
    instead, so it keeps a best checkpoint and a validation point on its curves: {"val_check_interval": n} or {}."""
    trainer_cfg = cfg.trainer
    max_steps = trainer_cfg.get("max_steps", -1)
    if max_steps is None or max_steps < 1 or trainer_cfg.get("val_check_interval") is not None:
        return {}
    if trainer_cfg.get("fast_dev_run") or trainer_cfg.get("limit_train_batches") is not None:
        return {}
    accumulate = int(trainer_cfg.get("accumulate_grad_batches") or 1)
    batches = max_steps * accumulate
    per_epoch = len(datamodule.train_dataloader())
    if batches >= per_epoch:
        return {}
    log.info(
        "trainer.max_steps=%d ends before the first validation (after %d steps, one epoch): validating at step %d",
        max_steps,
        math.ceil(per_epoch / accumulate),
        max_steps,
    )
    return {"val_check_interval": batches}


def start_line(cfg: DictConfig, datamodule, module: EmotionClassifier, trainer: L.Trainer, output_dir: Path) -> str:
    """What this run is about to do, in one line: data and its sizes, labels, task type, model, precision, run dir."""
    sizes = ", ".join(f"{split} {len(rows)}" for split, rows in datamodule.labeled.splits.items())
    kind = "multi-label" if datamodule.multi_label else "single-label"
    model = str(cfg.model.pretrained_model_name_or_path).rstrip("/").rsplit("/", 1)[-1]
    params = sum(p.numel() for p in module.network.parameters()) / 1e6
    return (
        f"start: {datamodule.name} ({sizes}; {datamodule.num_labels} labels, {kind}) · {model} ({params:.1f} M "
        f"parameters) · precision {trainer.precision} · run dir {output_dir}"
    )
