"""The model folder's README.md in the Hub's model-card form: YAML front matter, then what it is and how to use it.

`render_card` needs only plain values (label names, metrics, config facts); `card_facts` picks those facts from a
resolved training config. It imports nothing of the project, so the export code can call it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import yaml

# Our metric names → the Hub's metric ids (the `metrics` field of the front matter).
HUB_METRICS = {
    "accuracy": "accuracy",
    "f1_macro": "f1",
    "f1_micro": "f1",
    "f1_weighted": "f1",
    "auroc_macro": "roc_auc",
    "auroc_micro": "roc_auc",
    "jaccard": "jaccard",
    "exact_match": "exact_match",
}
STAGES = {"val": "validation", "test": "test"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, not a local path


def hub_id(value: object) -> str | None:
    """`value` when it reads as a Hub repository id (owner/name), else None (a local path, a missing value)."""
    return value if isinstance(value, str) and HUB_ID.match(value) else None


def _last(target: object) -> str | None:
    return target.rsplit(".", 1)[-1] if isinstance(target, str) else None


def card_facts(cfg: Mapping) -> dict:
    """The facts a card states, from `OmegaConf.to_container(cfg, resolve=True)` of a training config (the head
    and its pooling come from the model folder's spec instead)."""
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    optimizer, trainer = cfg.get("optimizer") or {}, cfg.get("trainer") or {}
    pretrained = model.get("pretrained", True)
    facts = {
        "model": model.get("pretrained_model_name_or_path"),
        "pretrained": pretrained,
        "base_model": hub_id(model.get("pretrained_model_name_or_path")) if pretrained else None,
        "dataset": data.get("path") or data.get("train_file"),
        "dataset_config": data.get("config_name"),
        "loss": _last((cfg.get("loss") or {}).get("_target_")),
        "epochs": trainer.get("max_epochs"),
        "lr": optimizer.get("lr"),
        "batch_size": data.get("batch_size"),
        "max_length": data.get("max_length"),
        "precision": trainer.get("precision"),
        "seed": cfg.get("seed"),
    }
    return {key: value for key, value in facts.items() if value is not None}


def _metric_table(metrics: Mapping[str, float]) -> list[str]:
    """| metric | validation | test | for `<stage>/<name>` metrics (the loss left out)."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        stage, _, name = key.partition("/")
        if stage in STAGES and name and not name.startswith("loss"):
            rows.setdefault(name, {})[stage] = float(value)
    if not rows:
        return []
    lines = ["| metric | validation | test |", "|---|---|---|"]
    for name, values in sorted(rows.items()):
        cells = [f"{values[s]:.4f}" if s in values else "–" for s in STAGES]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def _label_table(
    label_names: Sequence[str], thresholds: Sequence[float] | None, per_label: Mapping[str, Mapping[str, float]]
) -> list[str]:
    """| label | [threshold |] validation F1 | test F1 |; a dash where a figure is unknown."""
    stages = [s for s in STAGES if s in per_label]
    header = ["label"] + (["threshold"] if thresholds else []) + [f"{STAGES[s]} F1" for s in stages]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, name in enumerate(label_names):
        cells = [f"`{name}`"] + ([f"{thresholds[i]:.2f}"] if thresholds else [])
        cells += [f"{per_label[s][name]:.4f}" if name in per_label[s] else "–" for s in stages]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _calibration_lines(multi_label: bool, temperatures: Sequence[float] | None) -> list[str]:
    if not temperatures:
        return []
    what = (
        "one temperature per label (the thresholds above are mapped to that scale: each label's decision is the "
        "one made before calibration)"
        if multi_label
        else f"one temperature, T = {temperatures[0]:.4f} (the top label is unchanged)"
    )
    return [
        "## Calibration",
        "",
        f"The probabilities are temperature-scaled, fitted on validation by minimizing the NLL: {what}. `ece` /",
        "`ece_calibrated` in the metrics: expected calibration error before and after.",
        "",
    ]


def _front_matter(
    label_names: Sequence[str],
    multi_label: bool,
    transformers: bool,
    metrics: Mapping[str, float],
    facts: Mapping,
) -> str:
    task = "multi-label-classification" if multi_label else "single-label-classification"
    header: dict = {"library_name": "transformers" if transformers else "emo-lightning"}
    if transformers:  # the Hub's widget and "Use this model" open the folder with pipeline(): only where it can
        header["pipeline_tag"] = "text-classification"
    header["tags"] = ["emo-lightning", "emotion", *(["text-classification"] if transformers else []), task]
    if facts.get("base_model"):
        header["base_model"] = facts["base_model"]
    if hub_id(facts.get("dataset")):
        header["datasets"] = [facts["dataset"]]
    names = {key.partition("/")[2].removesuffix("_tuned") for key in metrics}
    hub_metrics = sorted({HUB_METRICS[name] for name in names if name in HUB_METRICS})
    if hub_metrics:
        header["metrics"] = hub_metrics
    header["labels"] = list(label_names)
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def render_card(
    label_names: Sequence[str],
    multi_label: bool,
    max_length: int,
    thresholds: Sequence[float] | None = None,
    tuned: bool = False,
    transformers: bool = False,
    metrics: Mapping[str, float] | None = None,
    per_label: Mapping[str, Mapping[str, float]] | None = None,
    facts: Mapping | None = None,
    temperatures: Sequence[float] | None = None,
    at_least_one: bool = False,
) -> str:
    """README.md text.

    `thresholds`: multi-label decision thresholds (`tuned`: on validation; else one fixed threshold), `at_least_one`:
    a text with none at or above its threshold gets its most probable label; `transformers`: the folder loads with
    `AutoModelForSequenceClassification` (then the card shows `pipeline()`); `metrics`: metrics.json's
    `<stage>/<name>` figures; `per_label`: {"val"/"test": {label: F1}}; `facts`: `card_facts` of the training config;
    `temperatures`: the calibration temperatures fitted on validation (None: uncalibrated probabilities).
    """
    metrics, per_label, facts = dict(metrics or {}), dict(per_label or {}), dict(facts or {})
    kind = (
        f"any of {len(label_names)} emotions (multi-label: one sigmoid per label)"
        if multi_label
        else f"one of {len(label_names)} emotions (single-label: a softmax over the labels)"
    )
    base = f"`{facts['model']}`" if facts.get("model") else "a Hugging Face encoder"
    head = f"a {facts['head']} head" if facts.get("head") else "a classification head"
    pooling = f" ({facts['pooling']} pooling)" if facts.get("pooling") else ""
    lines = [
        _front_matter(label_names, multi_label, transformers, metrics, facts),
        f"# Emotion classifier: {facts.get('model', 'encoder')} + {facts.get('head', 'head')}",
        "",
        f"{base} fine-tuned with emo-lightning, with {head}{pooling}. It reads a "
        f"text (up to {max_length} tokens) and gives {kind}.",
        "",
        "## Labels",
        "",
        *_label_table(label_names, thresholds, per_label),
        "",
    ]
    if multi_label:
        source = " (tuned on validation)" if tuned else " (a fixed threshold: none was tuned)"
        rule = "; a text with no such label gets its most probable one" if at_least_one else ""
        lines += [f"A label is predicted when its probability is at or above its threshold{source}{rule}.", ""]
    lines += _calibration_lines(multi_label, temperatures)
    table = _metric_table(metrics)
    lines += ["## Metrics", ""] + (table or ["Not measured when this folder was written."]) + [""]
    if any(key.endswith("_tuned") for key in metrics):
        lines += ["`*_tuned`: at the tuned thresholds; val/*_tuned are scored where they were tuned (optimistic).", ""]
    training = {k: v for k, v in facts.items() if k not in ("base_model",)}
    if training:
        lines += ["## Training", ""] + [f"- {key}: `{value}`" for key, value in training.items()] + [""]
    lines += [
        "## How to predict",
        "",
        "```python",
        "from emo_lightning import EmotionPredictor",
        "",
        'predictor = EmotionPredictor("path/to/model")',
        'print(predictor.predict(["i am so happy today"])[0].labels)',
        "```",
        "",
        "```bash",
        "emo-predict run_dir=path/to/run  # python predict.py in a clone of emo-lightning",
        "```",
        "",
    ]
    if transformers:
        lines += [
            "With `transformers` alone (probabilities only; apply the thresholds above yourself for multi-label):",
            "",
            "```python",
            "from transformers import pipeline",
            "",
            'classifier = pipeline("text-classification", model="path/to/model", top_k=None)',
            f'print(classifier("i am so happy today", truncation=True, max_length={max_length}))',
            "```",
            "",
        ]
    else:
        lines += [
            "This head has no `transformers` class: `pipeline()` cannot load this folder (the encoder alone is in",
            "`encoder/`); use `EmotionPredictor`.",
            "",
        ]
    return "\n".join(lines)
