"""`evaluate.py run_dir=<run> data=<any data config>`: a finished run's model folder (its thresholds, calibration
and inference backends) scored on other labelled data, under the names of the run's metrics.json, with per-label
figures, predictions/<split>.csv, the published anchors where the dataset is one we know, and a summary.md; written
to its own folder, never into the run's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from emo_lightning.analysis.anchors import ANCHORS, anchor_markdown
from emo_lightning.analysis.report import run_row
from emo_lightning.analysis.runs import finished_run, run_metrics
from emo_lightning.data.encoding import LABELS, TEXT
from emo_lightning.evaluation.label_match import LabelMatch, check_kinds, gold_in_model_space, match_labels, restricted
from emo_lightning.evaluation.predictions import write_split_predictions
from emo_lightning.evaluation.scoring import score_probabilities
from emo_lightning.evaluation.splits import stage_of
from emo_lightning.utils.atomic import atomic_write_text, refuse_to_overwrite
from emo_lightning.utils.console import no_datasets_bars
from emo_lightning.utils.errors import ConfigError, did_you_mean
from emo_lightning.utils.rules import EVALUATE, check_values

log = logging.getLogger(__name__)

SUMMARY, METRICS = "summary.md", "metrics.json"
SPLIT_NAMES = {"val": "validation"}


def load_labeled(data_cfg: DictConfig):
    """The data config's splits (texts and labels, not tokenized), its class from our registry by `_target_`.
    `data=files` needs no train file here: `data.test_file=` alone is enough."""
    from emo_lightning.data.registry import DATAMODULE_TARGETS, DATAMODULES

    target = data_cfg.get("_target_")
    if target not in DATAMODULE_TARGETS:
        raise ConfigError(f"data._target_={target} is not one of our datamodules: choose data= from conf/data/")
    classes = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in DATAMODULES.values()}
    data_cfg = data_cfg.copy()
    if OmegaConf.is_missing(data_cfg, "train_file"):
        data_cfg.train_file = None
    arguments = OmegaConf.to_container(data_cfg, resolve=True)
    with no_datasets_bars():  # a bar per split read, on stderr, before a refusal's one line
        return classes[arguments.pop("_target_")](**arguments).load_splits()


def chosen_splits(requested, available) -> list[str]:
    splits = [SPLIT_NAMES.get(str(s), str(s)) for s in requested]
    if not splits:
        raise ConfigError("splits=[] scores nothing: e.g. splits=[test]")
    for split in splits:
        if split not in available:
            close = did_you_mean(split, list(available))
            hint = f"did you mean splits=[{close}]? " if close else ""
            raise ConfigError(
                f"splits names {split}, which the data does not have: {hint}use some of {', '.join(available)}"
            )
    return splits


def run_evaluate(cfg: DictConfig, output_dir: Path, data_choice: str | None) -> Path:
    """Score the run's model on `cfg.splits` of `cfg.data`; write metrics.json, predictions/, summary.md."""
    from emo_lightning.inference.predictor import EmotionPredictor

    check_values(cfg, EVALUATE)
    run_dir = finished_run(cfg.run_dir)
    output_dir = Path(output_dir)
    if output_dir.resolve() == run_dir.resolve() or run_dir.resolve() in output_dir.resolve().parents:
        raise ConfigError(f"hydra.run.dir={output_dir} lies inside the run: give a folder outside {run_dir}")
    refuse_to_overwrite(output_dir, (SUMMARY, METRICS, "predictions"), "an evaluation")
    labeled = load_labeled(cfg.data)
    splits = chosen_splits(cfg.splits, labeled.splits)
    predictor = EmotionPredictor.from_run(run_dir, cfg.batch_size, cfg.precision, backend=cfg.backend)
    spec = predictor.spec
    check_kinds(labeled.multi_label, spec.multi_label)
    mapping = OmegaConf.to_container(cfg.labels.map) if cfg.labels.map else {}
    match = match_labels(labeled.label_names, spec.label_names, mapping, cfg.labels.unknown, cfg.labels.missing)
    gold = {
        s: gold_in_model_space(labeled.splits[s][LABELS], labeled.multi_label, spec.multi_label, match) for s in splits
    }
    tuned = run_metrics(run_dir).get("tuned_on") is not None
    metrics, per_label, texts, outputs, examples = {}, {}, {}, {}, {}
    for split in splits:
        keep, targets = gold[split]
        texts[split] = [t for t, kept in zip(labeled.splits[split][TEXT], keep.tolist()) if kept]
        if len(texts[split]) < len(keep):
            match.notes.append(f"{split}: {len(keep) - len(texts[split])} rows dropped (their label was dropped)")
        log.info(
            "evaluate: predicting %d %s texts with %s (%s)", len(texts[split]), split, run_dir, predictor.backend.name
        )
        probs = restricted(predictor.predict_proba(texts[split], progress=True), match, spec.multi_label)
        evaluation = score_split(split, probs, targets, match, predictor, tuned)
        metrics |= evaluation.metrics
        per_label |= evaluation.per_label
        outputs |= evaluation.outputs
        examples[stage_of(split)] = len(texts[split])
    output_dir.mkdir(parents=True, exist_ok=True)
    write_split_predictions(output_dir / "predictions", texts, outputs, match.scored_names)
    record = {
        "run_dir": str(run_dir),
        "data": data_choice,
        "metrics": metrics,
        "per_label_f1": per_label,
        "examples": examples,
        "labels": match.scored_names,
        "notes": match.notes,
    }
    atomic_write_text(output_dir / METRICS, json.dumps(record, indent=2))
    summary = output_dir / SUMMARY
    atomic_write_text(summary, summary_markdown(run_dir, data_choice, record, match))
    return summary


def score_split(split: str, probs: torch.Tensor, targets: torch.Tensor, match: LabelMatch, predictor, tuned: bool):
    """One split scored at the model's saved thresholds and calibration, on the scored labels only."""
    spec, scored = predictor.spec, match.scored
    thresholds = [predictor.thresholds[i] for i in scored] if spec.multi_label else None
    temperatures = spec.temperatures
    if temperatures and len(temperatures) > 1:  # one per label: those of the scored labels
        temperatures = [temperatures[i] for i in scored]
    return score_probabilities(
        split, probs, targets, match.scored_names, spec.multi_label, thresholds, spec.at_least_one, temperatures, tuned
    )


def summary_markdown(run_dir: Path, data_choice: str | None, record: dict, match: LabelMatch) -> str:
    metrics = record["metrics"]
    lines = [f"# `{run_dir}` on data={data_choice}", ""]
    lines += [f"- {note}" for note in match.notes] + ([""] if match.notes else [])
    stages = list(record["examples"])
    lines += ["| metric | " + " | ".join(stages) + " |", "| --- | " + " | ".join("---" for _ in stages) + " |"]
    for name in dict.fromkeys(key.split("/", 1)[1] for key in metrics):
        cells = [f"{metrics[f'{s}/{name}']:.4f}" if f"{s}/{name}" in metrics else "–" for s in stages]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Per-label F1:", "", "| label | " + " | ".join(stages) + " |"]
    lines.append("| --- | " + " | ".join("---" for _ in stages) + " |")
    for label in record["labels"]:
        lines.append(f"| {label} | " + " | ".join(f"{record['per_label_f1'][s][label]:.3f}" for s in stages) + " |")
    if data_choice in ANCHORS and "test" in stages and not match.notes:
        row = [("**this model**", str(run_dir.name), run_row(data_choice, metrics))]
        lines += ["", "## Test figures beside the published anchors", "", anchor_markdown(data_choice, row)]
    lines += ["", "Each text's labels and probabilities: `predictions/<split>.csv`.", ""]
    return "\n".join(lines)
