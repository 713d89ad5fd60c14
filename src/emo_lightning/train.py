"""`train(cfg)`: instantiate the pieces from the config and wire them; then test and write the run's artifacts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, WeightAveraging
from omegaconf import DictConfig, OmegaConf

from emo_lightning.data.encoding import TEXT
from emo_lightning.evaluation import evaluate_splits
from emo_lightning.loggers import finish_wandb_run
from emo_lightning.models.classifier import EmotionClassifier
from emo_lightning.models.export import ClassifierSpec, save_model_dir
from emo_lightning.models.heads import LabelPromptHead, label_prompt
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.split_predictions import write_split_predictions
from emo_lightning.utils.config import validate_config
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, configure_kernels, resolve_precision, uses_gpu

log = logging.getLogger(__name__)


def build_classifier(cfg: DictConfig, datamodule) -> tuple[EmotionClassifier, ClassifierSpec]:
    """The LightningModule for this data, and the spec the exported model folder will carry."""
    backbone = instantiate(cfg.model, tokenizer=datamodule.tokenizer)
    head_args = {"hidden_size": backbone.config.hidden_size, "num_labels": datamodule.num_labels}
    if issubclass(get_class(cfg.head._target_), LabelPromptHead):
        head_args |= label_prompt(datamodule.tokenizer, datamodule.label_names)
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
    """The configured Trainer, with `precision=auto` resolved for this machine and its kernel settings applied."""
    on_gpu = uses_gpu(cfg.trainer.accelerator)
    precision = resolve_precision(cfg.trainer.precision, Hardware.detect(), on_gpu)
    configure_kernels(on_gpu)
    return instantiate(cfg.trainer, precision=precision, **kwargs)


def instantiate_group(group: DictConfig | None, **defaults) -> list:
    """Instantiate every node of a config group; `defaults` fill keys the config leaves null."""
    objects = []
    for node in (group or {}).values():
        runtime = {k: v for k, v in defaults.items() if k in node and node[k] is None}
        objects.append(instantiate(node, **runtime))
    return objects


def check_monitors(callbacks: list, module: EmotionClassifier) -> None:
    """A callback watching a metric that validation never logs would fail only after the first epoch."""
    for callback in callbacks:
        monitor = getattr(callback, "monitor", None)
        if monitor and monitor not in module.metric_names:
            name = type(callback).__name__
            raise ConfigError(
                f"{name} monitors {monitor}, which this task does not log: use one of {', '.join(module.metric_names)}"
            )


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, evaluate the best checkpoint on validation and test, tune thresholds, write metrics.json and model/."""
    validate_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")  # label names and task type are needed to build the model
    module, spec = build_classifier(cfg, datamodule)
    callbacks = instantiate_group(cfg.callbacks, monitor=module.monitor)
    loggers = instantiate_group(cfg.logger)
    check_monitors(callbacks, module)
    plots = instantiate(cfg.plots) if cfg.get("plots") else None
    if plots is not None:
        callbacks.append(plots)
    tuner = instantiate(cfg.thresholds) if datamodule.multi_label else None
    if not loggers:  # a learning-rate monitor has nowhere to write (Lightning refuses the pair)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.compile:
        module.network.backbone.compile(dynamic=True)  # in place: state_dict keys stay those of the model
    trainer = build_trainer(cfg, callbacks=callbacks, logger=loggers or False)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        # A checkpoint of a weight-averaging run holds the averaged weights; evaluate and export those (the
        # callback would otherwise restore the raw weights on load and swap models during validation).
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        ckpt_path = best or None  # without a best checkpoint, evaluate the weights as they are
        metrics = trainer.validate(module, datamodule=datamodule, ckpt_path=ckpt_path)[0]
        if datamodule.has_test:
            metrics |= trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path)[0]
        if trainer.is_global_zero:  # the module now holds the evaluated (best) weights
            splits = ["validation", "test"] if datamodule.has_test else ["validation"]
            loaders = {split: datamodule.eval_dataloader(split) for split in splits}
            names = datamodule.label_names
            evaluation = evaluate_splits(module, loaders, names, datamodule.multi_label, tuner)
            metrics |= evaluation.metrics
            spec.thresholds = evaluation.thresholds
            spec.at_least_one = bool(tuner is not None and tuner.at_least_one)
            log_tuned(trainer, evaluation.metrics, spec.thresholds)
            output_dir = Path(cfg.paths.output_dir)
            monitor = trainer.checkpoint_callback.monitor if trainer.checkpoint_callback else module.monitor
            write_metrics(
                output_dir / "metrics.json", metrics, ckpt_path, monitor, evaluation.per_label, spec.thresholds
            )
            save_model_dir(output_dir / "model", module.network, datamodule.tokenizer, spec)
            texts = {split: datamodule.labeled.splits[split][TEXT] for split in splits}
            write_split_predictions(output_dir / "predictions", texts, evaluation.outputs, names)
            if plots is not None:  # after the artifacts, and before the W&B run closes (it gets the figures too)
                plots.evaluation(evaluation, datamodule.label_names, trainer.loggers)
            log.info("run artifacts in %s", output_dir)
    finally:
        finish_wandb_run()
    return metrics


def log_tuned(trainer: L.Trainer, tuned: dict[str, float], thresholds: list[float] | None) -> None:
    if not tuned:
        return
    for logger in trainer.loggers:
        logger.log_metrics(tuned, step=trainer.global_step)
        logger.save()
    stage = "test/" if any(k.startswith("test/") for k in tuned) else "val/"
    shown = ", ".join(f"{k} {v:.4f}" for k, v in tuned.items() if k.startswith(stage))
    log.info("thresholds tuned on validation (%s): %s", " ".join(f"{t:.2f}" for t in thresholds), shown)


def write_metrics(
    path: Path,
    metrics: dict[str, float],
    checkpoint: str | None,
    monitor: str,
    per_label_f1: dict[str, dict[str, float]],
    thresholds: list[float] | None,
) -> None:
    record = {
        "monitor": monitor,
        "checkpoint": checkpoint,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "per_label_f1": per_label_f1,
        "thresholds": thresholds,
    }
    path.write_text(json.dumps(record, indent=2))
