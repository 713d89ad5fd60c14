"""`analyze.py task=errors run_dir=<run> errors.split=test`: the error analysis of a finished run, redone on any
split of its dataset with the run's exported model (the one inference path): errors_<split>.csv sorted by loss,
its reliability diagram, PR curves (multi-label) or confusion matrix (single-label), and a summary.md."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from emo_lightning.analysis.run_figures import evaluation_figures
from emo_lightning.analysis.runs import finished_run, run_config, run_data, run_metrics
from emo_lightning.data.encoding import LABELS, TEXT
from emo_lightning.evaluation.error_rows import error_rows, write_errors
from emo_lightning.evaluation.scoring import score_probabilities
from emo_lightning.evaluation.splits import stage_of
from emo_lightning.utils.atomic import atomic_write_text, refuse_to_overwrite
from emo_lightning.utils.errors import ConfigError, did_you_mean
from emo_lightning.utils.rules import ANALYZE, check_values

log = logging.getLogger(__name__)

SUMMARY = "summary.md"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def split_name(split: str) -> str:
    """The dataset's split name: val → validation."""
    return "validation" if split == "val" else split


SPLITS = ("train", "validation", "test")  # what a dataset's splits may be called (val: validation)


def check_settings(settings: DictConfig) -> None:
    """One line for a bad `errors.*` value, before any data or model loads."""
    split = split_name(str(settings.split))
    if split not in SPLITS:
        close = did_you_mean(split, list(SPLITS))
        raise ConfigError(
            f"errors.split={settings.split} is not a split name: "
            f"{f'did you mean errors.split={close}? ' if close else ''}use one of train, validation (or val), test"
        )
    if settings.precision not in PRECISIONS:
        raise ConfigError(f"errors.precision={settings.precision} is not one of {', '.join(PRECISIONS)}")
    check_values(settings, ANALYZE, under="errors")


def run_errors(cfg: DictConfig, output_dir: Path) -> Path:
    """Predict one split of a finished run's dataset with its model folder; write the errors, figures, summary."""
    from emo_lightning.inference.predictor import EmotionPredictor

    settings = cfg.errors
    check_settings(settings)
    run_dir = finished_run(cfg.run_dir)
    split = split_name(str(settings.split))
    stage = stage_of(split)
    output_dir = Path(output_dir)
    refuse_to_overwrite(output_dir, (SUMMARY, f"errors_{stage}.csv"), "an error analysis")
    labeled = run_data(run_config(run_dir))
    if split not in labeled.splits:
        close = did_you_mean(split, list(labeled.splits))
        raise ConfigError(
            f"errors.split={settings.split} is not a split of this run's dataset: "
            f"{f'did you mean errors.split={close}? ' if close else ''}use one of {', '.join(labeled.splits)}"
        )
    predictor = EmotionPredictor.from_run(run_dir, batch_size=settings.batch_size, precision=settings.precision)
    names, spec = list(labeled.label_names), predictor.spec
    if names != list(spec.label_names):
        raise ConfigError(
            f"{run_dir}/model has labels {spec.label_names}, the run's dataset now {names}: the data changed since "
            "training; analyze a run of this data"
        )
    texts = list(labeled.splits[split][TEXT])
    targets = torch.as_tensor(list(labeled.splits[split][LABELS]))
    log.info(
        "errors: predicting %d %s texts with %s (%s)", len(texts), split, run_dir / "model", predictor.backend.name
    )
    probs = predictor.predict_proba(texts, progress=True)
    tuned = run_metrics(run_dir).get("tuned_on") is not None
    evaluation = score_probabilities(  # the names of the run's metrics.json
        split,
        probs,
        targets,
        names,
        spec.multi_label,
        predictor.thresholds,
        spec.at_least_one,
        spec.temperatures,
        tuned,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = error_rows({split: texts}, evaluation.outputs, names, spec.multi_label)
    write_errors(output_dir / f"errors_{stage}.csv", rows)
    figures = evaluation_figures(evaluation, names, spec.multi_label, output_dir, per_label=False)
    summary = output_dir / SUMMARY
    atomic_write_text(summary, summary_markdown(run_dir, split, evaluation.metrics, rows, figures, settings.top))
    return summary


def summary_markdown(
    run_dir: Path, split: str, metrics: dict[str, float], rows: list[dict], figures: list[Path], top: int
) -> str:
    wrong = sum(not row["correct"] for row in rows)
    lines = [
        f"# Errors of `{run_dir}` on {split}",
        "",
        f"{len(rows)} texts, {wrong} with a wrong label set ({wrong / max(len(rows), 1):.1%}); the model folder's "
        "calibrated probabilities and saved thresholds. Full table: "
        f"`errors_{stage_of(split)}.csv`, highest loss first.",
        "",
        "| metric | value |",
        "| --- | --- |",
        *(f"| {key} | {value:.4f} |" for key, value in metrics.items()),
        "",
        f"## The {min(top, len(rows))} texts with the highest loss",
        "",
        "Confident and wrong: a mislabeled text, or one the model cannot read.",
        "",
        "| loss | gold | predicted | text |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows[:top]:
        text = str(row["text"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row['loss']:.3f} | {row['gold'] or '–'} | {row['predicted'] or '–'} | {text} |")
    lines += ["", *(f"![{path.stem}]({path.name})" for path in figures), ""]
    return "\n".join(lines)
