"""`task=baseline`: how far frozen features get: logistic regression on them vs a classifier that ignores the text.

Scored on validation and test with the training run's own metric code: `build_metrics` (single-label); for
multi-label `set_metrics` of the label sets `decide` gives at thresholds `ThresholdTuner` tuned on validation, as
a training run's `*_tuned` metrics.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emo_lightning.analysis.features import check_poolings, load_datamodule, split_features
from emo_lightning.data.encoding import LABELS
from emo_lightning.evaluation.splits import gold_sets, stage_of
from emo_lightning.inference.engine import decide
from emo_lightning.models.loop_metrics import build_metrics
from emo_lightning.models.metrics import set_metrics
from emo_lightning.models.thresholds import ThresholdTuner
from emo_lightning.utils.atomic import atomic_write_text, refuse_to_overwrite
from emo_lightning.utils.rules import ANALYZE, check_values

log = logging.getLogger(__name__)

SUMMARY = "baseline.md"
RESULTS = "baseline.json"
SINGLE_LABEL_METRICS = ("accuracy", "f1_macro", "f1_weighted")
MULTI_LABEL_METRICS = ("f1_micro", "f1_macro", "jaccard", "exact_match")


def run_baseline(cfg: DictConfig, output_dir: Path) -> Path:
    """Fit the baselines of `cfg.data` on frozen `cfg.model` features; write baseline.md/.json, return the md."""
    output_dir = Path(output_dir)
    check_settings(cfg.baseline)
    refuse_to_overwrite(output_dir, (SUMMARY, RESULTS), "a baseline")
    datamodule = load_datamodule(cfg)
    splits = ["train", "validation"] + (["test"] if datamodule.has_test else [])
    poolings = list(dict.fromkeys(cfg.baseline.poolings))
    features = split_features(cfg, datamodule, poolings, splits)
    labels = {split: np.asarray(datamodule.labeled.splits[split][LABELS]) for split in splits}
    names, multi_label = list(datamodule.label_names), datamodule.multi_label

    rows = {}
    for model_name, pooling in [("dummy", poolings[0])] + [(f"logreg-{p}", p) for p in poolings]:
        log.info("baseline: fitting %s", model_name)
        model = build_classifier(model_name, cfg, multi_label)
        inputs = {split: features[split][pooling].numpy() for split in splits}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(inputs["train"], labels["train"])
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            log.warning(
                "%s stopped at baseline.max_iter=%s before converging: raise baseline.max_iter for a tighter fit",
                model_name,
                cfg.baseline.max_iter,
            )
        for message in dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)):
            log.warning("%s: %s", model_name, message)  # e.g. a label no training text carries
        probs = {s: probabilities(model, inputs[s], len(names), multi_label) for s in splits if s != "train"}
        rows[model_name] = score(probs, {s: labels[s] for s in probs}, names, multi_label)

    result = {
        "dataset": datamodule.name,
        "encoder": str(cfg.model.pretrained_model_name_or_path),
        "multi_label": multi_label,
        "splits": {split: len(labels[split]) for split in splits},
        "metrics": list(MULTI_LABEL_METRICS if multi_label else SINGLE_LABEL_METRICS),
        "rows": rows,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / RESULTS, json.dumps(result, indent=2) + "\n")
    table = markdown_table(rows, result["metrics"], [stage_of(s) for s in splits if s != "train"])
    atomic_write_text(output_dir / SUMMARY, summary_markdown(result, table, cfg))
    print(table)  # noqa: T201
    log.info("baseline: %s and %s in %s", SUMMARY, RESULTS, output_dir)
    return output_dir / SUMMARY


def check_settings(settings: DictConfig) -> None:
    """One-line errors for bad `baseline.*` values, before any data is read."""
    check_poolings(list(settings.poolings), "baseline.poolings")
    check_values(settings, ANALYZE, under="baseline")


def build_classifier(model_name: str, cfg: DictConfig, multi_label: bool):
    """dummy: the most frequent class (single-label) or each label's training prior (multi-label); logreg-*:
    standardized features → logistic regression (one-vs-rest for multi-label)."""
    if model_name == "dummy":
        return DummyClassifier(strategy="prior" if multi_label else "most_frequent")
    logreg = LogisticRegression(C=float(cfg.baseline.C), max_iter=int(cfg.baseline.max_iter), random_state=cfg.seed)
    model = make_pipeline(StandardScaler(), logreg)
    return OneVsRestClassifier(model) if multi_label else model


def probabilities(model, inputs: np.ndarray, num_labels: int, multi_label: bool) -> torch.Tensor:
    """fp32 (texts, num_labels): class probabilities, or each label's probability of being present."""
    proba = model.predict_proba(inputs)
    if multi_label and isinstance(proba, list):  # DummyClassifier on multi-hot targets: one (texts, classes) per label
        columns = [p[:, list(c).index(1)] if 1 in c else np.zeros(len(inputs)) for p, c in zip(proba, model.classes_)]
        return torch.from_numpy(np.stack(columns, axis=1)).float()
    if multi_label:
        return torch.from_numpy(np.asarray(proba)).float()
    full = np.zeros((len(inputs), num_labels))
    full[:, np.asarray(model.classes_, dtype=int)] = proba  # classes missing from training get probability 0
    return torch.from_numpy(full).float()


def score(
    probs: dict[str, torch.Tensor], labels: dict[str, np.ndarray], names: list[str], multi_label: bool
) -> dict[str, float]:
    """`<stage>/<metric>` of every split, from the training run's metric code."""
    scores = {}
    if multi_label:
        tuner = ThresholdTuner()  # the project's defaults: per-label thresholds, tuned on validation only
        thresholds = tuner(probs["validation"], torch.as_tensor(labels["validation"]))
        for split, split_probs in probs.items():
            pred = decide(split_probs, True, thresholds, tuner.at_least_one)
            metrics = set_metrics(pred, gold_sets(torch.as_tensor(labels[split]), len(names)))
            scores |= {f"{stage_of(split)}/{name}": round(value, 4) for name, value in metrics.items()}
        return scores
    for split, split_probs in probs.items():
        metrics = build_metrics(len(names), multi_label=False)
        metrics.update(split_probs, torch.as_tensor(labels[split]).long())
        scores |= {f"{stage_of(split)}/{name}": round(float(v), 4) for name, v in metrics.compute().items()}
    return scores


def markdown_table(rows: dict[str, dict[str, float]], metrics: list[str], stages: list[str]) -> str:
    columns = [f"{stage}/{metric}" for stage in stages for metric in metrics]
    lines = ["| model | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for name, scores in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[c]:.4f}" for c in columns) + " |")
    return "\n".join(lines)


def summary_markdown(result: dict, table: str, cfg: DictConfig) -> str:
    kind = "multi-label" if result["multi_label"] else "single-label"
    sizes = ", ".join(f"{split} {n}" for split, n in result["splits"].items())
    decision = (
        "label sets at per-label thresholds tuned on validation (the project's `ThresholdTuner`, its defaults)"
        if result["multi_label"]
        else "the most probable class"
    )
    dummy = (
        "each label's training prior as its probability for every text (at tuned thresholds: a label on every text, "
        "or on none, whichever scores more on validation)"
        if result["multi_label"]
        else "always the most frequent training class"
    )
    return "\n".join(
        [
            f"# Baseline: {result['dataset']} ({kind})",
            "",
            f"Frozen `{result['encoder']}` features ({sizes} texts); decisions: {decision}.",
            f"- dummy: {dummy} (what ignoring the text scores).",
            f"- logreg-<pooling>: standardized features → logistic regression (C={cfg.baseline.C}, "
            f"max_iter={cfg.baseline.max_iter}{', one-vs-rest' if result['multi_label'] else ''}); "
            "cls: the first token's last hidden state, mean: the masked mean of the last hidden state.",
            "",
            table,
            "",
            "A fine-tuned model should beat logreg; a logreg near the dummy means the frozen features carry little of "
            "the labels.",
            "",
        ]
    )
