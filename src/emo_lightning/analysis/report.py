"""`analyze.py task=report run_dir=<run>`: one report.md of a finished run — what it trained, its test and validation
metrics beside the published anchors for its dataset, calibration, per-label F1, its figures, the top errors."""

from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from emo_lightning.analysis.anchors import ANCHORS, anchor_markdown
from emo_lightning.analysis.runs import finished_run, run_choice, run_config, run_metrics
from emo_lightning.utils.atomic import atomic_write_text
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.rules import ANALYZE, check_values

log = logging.getLogger(__name__)

REPORT = "report.md"
SETUP_GROUPS = ("data", "model", "head", "loss", "optimizer", "thresholds", "experiment")


def run_report(cfg: DictConfig, output_dir: Path) -> Path:
    """Write report.md (and a copy of the run's figures beside it, so the folder reads anywhere); return its path."""
    check_values(cfg.report, ANALYZE, under="report")
    run_dir = finished_run(cfg.run_dir)
    config = run_config(run_dir)  # checked before anything is written: the folder names nothing we do not know
    output_dir = Path(output_dir)
    if (output_dir / REPORT).exists():
        raise ConfigError(
            f"{output_dir} already holds a {REPORT}: give a new hydra.run.dir (or leave it out for a new "
            "time-stamped folder)"
        )
    record = run_metrics(run_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    if (run_dir / "plots").is_dir():
        (output_dir / "plots").mkdir(exist_ok=True)
        for png in sorted((run_dir / "plots").glob("*.png")):
            if png.is_symlink() or not png.is_file():  # a link could copy any file of this machine into the report
                log.warning("skipped %s: not a plain file (a run's figures are files it wrote)", png)
                continue
            shutil.copyfile(png, output_dir / "plots" / png.name)
            figures.append(f"plots/{png.name}")
    text = report_markdown(run_dir, config, record, figures, int(cfg.report.top_errors))
    atomic_write_text(output_dir / REPORT, text)
    return output_dir / REPORT


def report_markdown(run_dir: Path, config: DictConfig, record: dict, figures: list[str], top_errors: int) -> str:
    metrics = record["metrics"]
    dataset = run_choice(run_dir, "data")
    lines = [f"# Run report: `{run_dir.name}`", "", f"Run folder: `{run_dir}`.", ""]
    lines += setup_lines(run_dir, config, record)
    lines += ["## Test metrics beside the published anchors", ""]
    if dataset in ANCHORS:
        lines += [
            "Anchors are test-split figures from their sources; this run's row uses its validation-tuned thresholds "
            "where it has them (`_tuned`).",
            "",
            anchor_markdown(dataset, [("**this run**", model_name(config), run_row(dataset, metrics))]),
            "",
        ]
    else:
        lines += [f"No published anchors for data={dataset} (only for {', '.join(ANCHORS)}).", ""]
    lines += ["## All metrics", "", "| metric | validation | test |", "| --- | --- | --- |"]
    for name in metric_names(metrics):
        val, test = metrics.get(f"val/{name}"), metrics.get(f"test/{name}")
        lines.append(f"| {name} | {number(val)} | {number(test)} |")
    lines.append("")
    lines += calibration_lines(record)
    lines += per_label_lines(record)
    if figures:
        lines += ["## Figures", "", *(f"![{Path(f).stem}]({f})" for f in figures), ""]
    lines += error_lines(run_dir, top_errors)
    return "\n".join(lines)


def model_name(config: DictConfig) -> str:
    name = str(OmegaConf.select(config, "model.pretrained_model_name_or_path", default="?"))
    return name.rstrip("/").rsplit("/", 1)[-1]


def setup_lines(run_dir: Path, config: DictConfig, record: dict) -> list[str]:
    chosen = {group: run_choice(run_dir, group) for group in SETUP_GROUPS}
    lines = ["## What it trained", "", "| | |", "| --- | --- |"]
    lines += [f"| {group} | {choice} |" for group, choice in chosen.items() if choice]
    trainer = config.get("trainer", {})
    for key in ("max_epochs", "max_steps", "precision"):
        if trainer.get(key) not in (None, -1):  # -1 steps: no step limit
            lines.append(f"| trainer.{key} | {trainer[key]} |")
    lines.append(f"| best checkpoint | `{Path(record['checkpoint']).name if record.get('checkpoint') else '–'}` |")
    lines.append(f"| monitored | {record.get('monitor', '–')} |")
    return [*lines, ""]


def run_row(dataset: str, metrics: dict[str, float]) -> dict[str, str]:
    """This run's test figure for every anchor column: the tuned one where the run has it."""
    row = {}
    for key in ANCHORS[dataset].columns:
        for name in (f"test/{key}_tuned", f"test/{key}"):
            if name in metrics:
                row[key] = f"**{metrics[name]:.3f}**"
                break
    return row


def metric_names(metrics: dict[str, float]) -> list[str]:
    """Metric names without their split, in the order metrics.json has them."""
    return list(dict.fromkeys(key.split("/", 1)[1] for key in metrics if "/" in key))


def number(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def calibration_lines(record: dict) -> list[str]:
    temperatures = record.get("temperatures")
    if not temperatures:
        return []
    metrics = record["metrics"]
    shown = ", ".join(f"{t:.3f}" for t in temperatures[:12]) + (" …" if len(temperatures) > 12 else "")
    lines = ["## Calibration", "", f"Temperatures fitted on validation: {shown}.", ""]
    lines += ["| split | ECE before | ECE after |", "| --- | --- | --- |"]
    for stage in ("val", "test"):
        if f"{stage}/ece" in metrics:
            before, after = metrics[f"{stage}/ece"], metrics.get(f"{stage}/ece_calibrated")
            lines.append(f"| {stage} | {before:.4f} | {number(after)} |")
    return [*lines, ""]


def per_label_lines(record: dict) -> list[str]:
    per_label = record.get("per_label_f1") or {}
    if not per_label:
        return []
    stages = list(per_label)
    labels = list(per_label[stages[-1]])
    thresholds = record.get("thresholds")
    header = "| label | " + " | ".join(f"F1 {stage}" for stage in stages) + (" | threshold |" if thresholds else " |")
    lines = ["## Per-label F1", "", header, "|" + " --- |" * (len(stages) + 1 + bool(thresholds))]
    for i, name in enumerate(labels):
        cells = " | ".join(number(per_label[stage].get(name)) for stage in stages)
        cut = f" | {threshold_of(thresholds, name, i)} |" if thresholds else " |"
        lines.append(f"| {name} | {cells}{cut}")
    return [*lines, ""]


def threshold_of(thresholds, name: str, index: int) -> str:
    value = thresholds.get(name) if isinstance(thresholds, dict) else thresholds[index]
    return "–" if value is None else f"{value:.3f}"


def error_lines(run_dir: Path, top: int) -> list[str]:
    path = run_dir / "errors.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(top), csv.DictReader(handle))]
    lines = [f"## The {len(rows)} examples with the highest loss (errors.csv)", ""]
    lines += ["| split | loss | gold | predicted | text |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        text = row["text"].replace("|", "\\|").replace("\n", " ")
        loss = float(row["loss"])
        lines.append(f"| {row['split']} | {loss:.3f} | {row['gold'] or '–'} | {row['predicted'] or '–'} | {text} |")
    return [*lines, ""]
