"""After fit: one evaluation of the best weights on validation and test through the inference engine, and the
run's artifacts from it. The same figures go to the loggers, to metrics.json and to the end line."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from emo_lightning.data.encoding import LABELS, TEXT
from emo_lightning.evaluation.error_rows import error_rows, write_errors
from emo_lightning.evaluation.predictions import write_split_predictions
from emo_lightning.evaluation.splits import Evaluation, evaluate_splits, stage_of
from emo_lightning.inference.engine import TorchBackend
from emo_lightning.models.card import card_facts
from emo_lightning.models.folder import save_model_dir
from emo_lightning.training.run_plots import publish_errors
from emo_lightning.training.setup import Run
from emo_lightning.training.stopping import stopped_phrase
from emo_lightning.utils.atomic import atomic_dir
from emo_lightning.utils.console import command_for
from emo_lightning.utils.run_folder import ERRORS_FILE, METRICS_FILE, MODEL_DIR, PREDICTIONS_DIR, write_metrics

log = logging.getLogger(__name__)


def finish(run: Run, cfg: DictConfig, output_dir: Path, stopped: dict) -> dict[str, float]:
    """Load the best checkpoint's weights (the last weights where there is none), evaluate them once, write
    metrics.json, model/, predictions/, errors.csv and the plots, and log the end line; on rank 0 (other ranks: {})."""
    trainer, datamodule, module, spec, tuner = run.trainer, run.datamodule, run.module, run.spec, run.tuner
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    ckpt_path = best or None
    if not trainer.is_global_zero:
        return {}
    if ckpt_path:  # a weight-averaging run's checkpoint holds the averaged weights: those are evaluated and exported
        module.load_state_dict(torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"])
    splits = ["validation", "test"] if datamodule.has_test else ["validation"]
    trainer_limits = {"validation": trainer.limit_val_batches, "test": trainer.limit_test_batches}
    limits = {  # a debug run's final evaluation reads what its trainer would have read, not the whole split
        split: evaluation_limit(
            trainer_limits[split], trainer.fast_dev_run, datamodule.eval_batch_size, len(datamodule.tokenized[split])
        )
        for split in splits
    }
    texts = {split: datamodule.labeled.splits[split][TEXT][: limits[split]] for split in splits}
    gold = {split: datamodule.labeled.splits[split][LABELS][: limits[split]] for split in splits}
    names = datamodule.label_names
    # Lightning's teardown moved the module back to the CPU: it is evaluated where it trained (a GPU), then saved
    module.network.to(trainer.strategy.root_device)
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
    module.network.cpu()
    metrics = figures(module, evaluation)
    spec.thresholds, spec.temperatures = evaluation.thresholds, evaluation.temperatures
    spec.at_least_one = bool(tuner is not None and tuner.at_least_one)
    publish(trainer, metrics)
    say_tuned(metrics, spec.thresholds)
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
    with atomic_dir(output_dir / MODEL_DIR) as model_dir:
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
    write_split_predictions(output_dir / PREDICTIONS_DIR, texts, evaluation.outputs, names)
    errors = error_rows(texts, evaluation.outputs, names, datamodule.multi_label)
    write_errors(output_dir / ERRORS_FILE, errors)  # with plots=none too, like predictions/
    if run.plots is not None:  # after the artifacts, and before the W&B run closes (it gets the figures too)
        run.plots.evaluation(evaluation, names, trainer.loggers, multi_label=datamodule.multi_label)
    publish_errors(trainer.loggers, errors)
    log.info("%s", end_line(metrics, ckpt_path, module.monitor, output_dir, datamodule.multi_label, stopped))
    return metrics


def figures(module, evaluation: Evaluation) -> dict[str, float]:
    """Every figure of the evaluation under its logged name: each stage's loop metrics and loss (what validation
    logs during training, from the engine's fp32 logits), then the tuned metrics and calibration errors."""
    metrics: dict[str, float] = {}
    for stage, logits in evaluation.logits.items():
        metrics |= module.split_figures(stage, logits, evaluation.targets[stage])
    return metrics | evaluation.metrics


def publish(trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """The final figures to every logger, once, at the last step: the numbers metrics.json holds."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)
        logger.save()


def say_tuned(metrics: dict[str, float], thresholds: list[float] | None) -> None:
    """The tuned figures and the calibration's effect, on the console (test's where there is a test split)."""
    stage = "test/" if any(k.startswith("test/") for k in metrics) else "val/"
    tuned = {k: v for k, v in metrics.items() if k.endswith("_tuned") and k.startswith(stage)}
    if tuned and thresholds is not None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in tuned.items())
        log.info("thresholds tuned on validation (%s): %s", " ".join(f"{t:.2f}" for t in thresholds), shown)
    if f"{stage}ece" in metrics:
        before, after = metrics[f"{stage}ece"], metrics[f"{stage}ece_calibrated"]
        log.info("temperature scaling (fitted on validation): %sece %.4f → %.4f", stage, before, after)


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
        f"{command_for('predict.py')} run_dir={output_dir} texts='[\"i feel great today\"]'"
    )


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
