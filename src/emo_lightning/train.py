"""`train(cfg)`: instantiate the pieces from the config and wire them; then test and write the run's artifacts."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, WeightAveraging
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from emo_lightning.analysis.run_plots import publish_errors
from emo_lightning.data.encoding import LABELS, TEXT
from emo_lightning.evaluation.error_rows import error_rows, write_errors
from emo_lightning.evaluation.predictions import write_split_predictions
from emo_lightning.evaluation.splits import evaluate_splits, stage_of
from emo_lightning.inference.engine import TorchBackend
from emo_lightning.models.backbone import check_max_length, position_limit
from emo_lightning.models.card import card_facts
from emo_lightning.models.classifier import EmotionClassifier
from emo_lightning.models.folder import ClassifierSpec, save_model_dir
from emo_lightning.models.heads import LabelPromptHead, label_prompt
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.training.checkpointing import AtomicCheckpointIO, newest_checkpoint
from emo_lightning.training.distributed import is_extra_rank
from emo_lightning.training.loggers import finish_wandb_run
from emo_lightning.training.stopping import stopped_phrase, why_stopped
from emo_lightning.utils.atomic import atomic_dir, atomic_write_text, remove_partials
from emo_lightning.utils.config import validate_config
from emo_lightning.utils.console import HeldConsole, no_datasets_bars
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import Hardware, configure_kernels, resolve_precision, uses_gpu
from emo_lightning.utils.run_folder import METRICS_FILE, RUN_ARTIFACTS, wandb_run_id

log = logging.getLogger(__name__)


def build_classifier(cfg: DictConfig, datamodule) -> tuple[EmotionClassifier, ClassifierSpec]:
    """The LightningModule for this data, and the spec the exported model folder will carry."""
    backbone = instantiate(cfg.model, tokenizer=datamodule.tokenizer)
    check_max_length(backbone.config, datamodule.tokenizer, datamodule.max_length)
    head_args = {"hidden_size": backbone.config.hidden_size, "num_labels": datamodule.num_labels}
    if issubclass(get_class(cfg.head._target_), LabelPromptHead):
        head_args |= label_prompt(datamodule.tokenizer, datamodule.label_names)
        check_prompt_fits(backbone.config, datamodule.tokenizer, head_args, datamodule.max_length)
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


def check_prompt_fits(config, tokenizer, prompt: dict, max_length: int) -> None:
    """The label names go before every text: prompt + text must fit in the model's positions."""
    limit = position_limit(config, tokenizer.pad_token_id)
    prompt_length = len(prompt["prompt_ids"]) - int(prompt["drop_first"])
    if limit is not None and prompt_length + max_length > limit:
        raise ConfigError(
            f"head=label_prompt puts {prompt_length} tokens of label names before each text, and with "
            f"data.max_length={max_length} that is more than the {limit} positions the model reads: "
            f"set data.max_length ≤ {limit - prompt_length}, or use head=linear"
        )


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
            f"`python train.py resume={output_dir}`, or give a new hydra.run.dir"
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


def evaluation_limit(limit: int | float | None, fast_dev_run: bool | int, batch_size: int, size: int) -> int | None:
    """How many examples of a split of `size` the final evaluation reads: all (None), unless the trainer reads only
    part of it (`fast_dev_run`, `limit_val_batches` / `limit_test_batches` as batches or as a fraction)."""
    if fast_dev_run:
        batches = 1 if fast_dev_run is True else int(fast_dev_run)
    elif isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        batches = limit
    elif isinstance(limit, float) and 0 < limit < 1:
        batches = math.ceil(limit * math.ceil(size / batch_size))
    else:
        return None
    return batches * batch_size if batches * batch_size < size else None


def set_up(cfg: DictConfig, output_dir: Path):
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
    return trainer, datamodule, module, spec, tuner, plots, start_from


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, evaluate the best checkpoint on validation and test, tune thresholds, fit calibration temperatures,
    write metrics.json and model/."""
    validate_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    check_run_dir(output_dir, resuming=bool(cfg.resume) or is_extra_rank())  # rank 0 owns the folder
    held = HeldConsole()  # the setup's lines reach the console after the start line (train.log gets them in order)
    first = None
    try:
        trainer, datamodule, module, spec, tuner, plots, start_from = set_up(cfg, output_dir)
        first = start_line(cfg, datamodule, module, trainer, output_dir) if trainer.is_global_zero else None
    finally:
        held.release(first, log)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=start_from, weights_only=True)
        stopped = why_stopped(trainer)  # before validate/test move the trainer's state
        # A checkpoint of a weight-averaging run holds the averaged weights; evaluate and export those (the
        # callback would otherwise restore the raw weights on load and swap models during validation).
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        ckpt_path = best or None  # without a best checkpoint, evaluate the weights as they are
        evaluate = {"datamodule": datamodule, "ckpt_path": ckpt_path, "weights_only": True, "verbose": False}
        # loads the best weights into the module; the loggers get these loops' figures, metrics.json the same
        # figures from the inference path's outputs below (fp32, as predictions/ and the model folder)
        metrics = trainer.validate(module, **evaluate)[0]
        if datamodule.has_test:
            metrics |= trainer.test(module, **evaluate)[0]
        if trainer.is_global_zero:  # the module now holds the evaluated (best) weights
            splits = ["validation", "test"] if datamodule.has_test else ["validation"]
            trainer_limits = {"validation": trainer.limit_val_batches, "test": trainer.limit_test_batches}
            limits = {  # a debug run's final evaluation reads what its trainer read, not the whole split
                split: evaluation_limit(
                    trainer_limits[split],
                    trainer.fast_dev_run,
                    datamodule.eval_batch_size,
                    len(datamodule.tokenized[split]),
                )
                for split in splits
            }
            texts = {split: datamodule.labeled.splits[split][TEXT][: limits[split]] for split in splits}
            gold = {split: datamodule.labeled.splits[split][LABELS][: limits[split]] for split in splits}
            names = datamodule.label_names
            evaluation = evaluate_splits(  # the one inference path (prediction and export checks use it too), fp32
                TorchBackend(module.network),
                datamodule.tokenizer,
                texts,
                gold,
                names,
                datamodule.multi_label,
                tuner,
                max_length=datamodule.max_length,
                batch_size=datamodule.eval_batch_size,
                threshold=module.threshold,
                calibrate=True,  # temperatures fitted on validation, saved with (folded into) the model
            )
            for stage, logits in evaluation.logits.items():  # the figures of predictions/*.csv's outputs (fp32),
                metrics |= module.split_figures(stage, logits, evaluation.targets[stage])  # not the loop's autocast
            metrics |= evaluation.metrics
            spec.thresholds, spec.temperatures = evaluation.thresholds, evaluation.temperatures
            spec.at_least_one = bool(tuner is not None and tuner.at_least_one)
            log_tuned(trainer, evaluation.metrics, spec.thresholds)
            monitor = trainer.checkpoint_callback.monitor if trainer.checkpoint_callback else module.monitor
            fixed = tuner if tuner is not None and not tuner.tunes else None  # thresholds=none
            notes = run_notes(
                datamodule.has_test, evaluation.tuned, limits, calibrated=spec.temperatures is not None, fixed=fixed
            )
            write_metrics(
                output_dir / METRICS_FILE,
                metrics,
                ckpt_path,
                monitor,
                evaluation.per_label,
                spec.thresholds,
                notes,
                temperatures=spec.temperatures,
                label_names=names,
                examples={stage_of(split): len(split_texts) for split, split_texts in texts.items()},
                tuned_on="validation" if evaluation.tuned else None,
                stopped=stopped,
            )
            with atomic_dir(output_dir / "model") as model_dir:
                facts = card_facts(OmegaConf.to_container(cfg, resolve=True))
                save_model_dir(
                    model_dir,
                    module.network,
                    datamodule.tokenizer,
                    spec,
                    metrics=metrics,
                    per_label=evaluation.per_label,
                    config=facts,
                    tuned=evaluation.tuned,
                )
            write_split_predictions(output_dir / "predictions", texts, evaluation.outputs, names)
            errors = error_rows(texts, evaluation.outputs, names, datamodule.multi_label)
            write_errors(output_dir / "errors.csv", errors)  # with plots=none too, like predictions/
            if plots is not None:  # after the artifacts, and before the W&B run closes (it gets the figures too)
                plots.evaluation(evaluation, names, trainer.loggers, multi_label=datamodule.multi_label)
            publish_errors(trainer.loggers, errors)
            log.info("%s", end_line(metrics, ckpt_path, module.monitor, output_dir, datamodule.multi_label, stopped))
    finally:
        finish_wandb_run()
    return metrics


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


HEADLINES = {False: ("accuracy", "f1_macro"), True: ("f1_macro_tuned", "f1_micro_tuned", "jaccard_tuned")}


def end_line(
    metrics: dict[str, float],
    ckpt_path: str | None,
    monitor: str,
    output_dir: Path,
    multi_label: bool,
    stopped: dict | None = None,
) -> str:
    """How the run ended, in one line: the best checkpoint, its headline figures (test where there is a test split),
    why training stopped (`why_stopped`'s record), the run dir, and the command that predicts with it."""
    stage = "test" if any(key.startswith("test/") for key in metrics) else "val"
    shown = []
    for name in HEADLINES[multi_label]:
        key = next((k for k in (f"{stage}/{name}", f"{stage}/{name.removesuffix('_tuned')}") if k in metrics), None)
        if key:
            shown.append(f"{key} {metrics[key]:.4f}")
    best = (
        f"best checkpoint {Path(ckpt_path).name} (by {monitor})" if ckpt_path else "no best checkpoint (last weights)"
    )
    why = f" · stopped: {stopped_phrase(stopped)}" if stopped else ""
    return (
        f"done: {best}: {', '.join(shown)}{why} · run dir {output_dir} · predict with: "
        f"python predict.py run_dir={output_dir} texts='[\"i feel great today\"]'"
    )


def log_tuned(trainer: L.Trainer, figures: dict[str, float], thresholds: list[float] | None) -> None:
    """The final evaluation's figures (tuned metrics, ECE) to the loggers; the tuned ones and ECE to the console."""
    if not figures:
        return
    for logger in trainer.loggers:
        logger.log_metrics(figures, step=trainer.global_step)
        logger.save()
    stage = "test/" if any(k.startswith("test/") for k in figures) else "val/"
    tuned = {k: v for k, v in figures.items() if k.endswith("_tuned")}
    if tuned and thresholds is not None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in tuned.items() if k.startswith(stage))
        log.info("thresholds tuned on validation (%s): %s", " ".join(f"{t:.2f}" for t in thresholds), shown)
    if f"{stage}ece" in figures:
        before, after = figures[f"{stage}ece"], figures[f"{stage}ece_calibrated"]
        log.info("temperature scaling (fitted on validation): %sece %.4f → %.4f", stage, before, after)


def run_notes(
    has_test: bool, tuned: bool, limits: dict[str, int | None], calibrated: bool = False, fixed=None
) -> list[str]:
    """What a reader of metrics.json must know to read its figures honestly; each note is also logged. `fixed`: the
    ThresholdTuner of thresholds=none (nothing tuned), else None."""
    notes = []
    if calibrated:
        notes.append(
            "probabilities are temperature-scaled, fitted on validation (val/ece_calibrated is optimistic, "
            f"test/ece_calibrated is not); thresholds, {'*_tuned ' if tuned else ''}and predictions/ are on that scale"
        )
    if fixed is not None:
        notes.append(fixed_note(fixed.default, fixed.at_least_one, calibrated))
    if tuned:
        notes.append(
            "val/*_tuned are scored on the split the thresholds were tuned on (optimistic); test/*_tuned are not"
        )
    if not has_test:
        notes.append("no test split: every figure here is validation-only")
    limited = [f"{split} (first {n} examples)" for split, n in limits.items() if n is not None]
    if limited:
        notes.append(f"a debug run: evaluated on part of {', '.join(limited)}")
    for note in notes:
        log.info("note: %s", note)
    return notes


def fixed_note(threshold: float, at_least_one: bool, calibrated: bool) -> str:
    """The note of thresholds=none: which fixed decisions the untuned figures score."""
    mapped = " (mapped to the calibrated scale: the same decisions)" if calibrated else ""
    rule = ", or its most probable label where none reaches it (at_least_one)" if at_least_one else ""
    return (
        f"thresholds=none: nothing was tuned; each text gets every label at or above the fixed threshold "
        f"{threshold:g}{mapped}{rule}; f1_micro, f1_macro, jaccard and exact_match score those decisions"
    )


def write_metrics(
    path: Path,
    metrics: dict[str, float],
    checkpoint: str | None,
    monitor: str,
    per_label_f1: dict[str, dict[str, float]],
    thresholds: list[float] | None,
    notes: list[str] = (),
    temperatures: list[float] | None = None,
    label_names: list[str] | None = None,
    examples: dict[str, int] | None = None,
    tuned_on: str | None = None,
    stopped: dict | None = None,
) -> None:
    """metrics.json; thresholds keyed by label name (label order differs between datasets and runs); `examples`:
    how many texts of each split every figure of that split saw (the whole split, or what limit_*/debug= read);
    `tuned_on`: the split the thresholds were tuned on (None: not tuned, e.g. thresholds=none); `stopped`: why training
    ended (`stopping.why_stopped`)."""
    record = {
        "monitor": monitor,
        "checkpoint": checkpoint,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "per_label_f1": per_label_f1,
        "thresholds": dict(zip(label_names, thresholds, strict=True)) if thresholds is not None else None,
        "tuned_on": tuned_on,
        "examples": examples,
        "temperatures": temperatures,  # calibration, fitted on validation; None: uncalibrated
        "notes": list(notes),
        "stopped": stopped,
    }
    atomic_write_text(path, json.dumps(record, indent=2))
