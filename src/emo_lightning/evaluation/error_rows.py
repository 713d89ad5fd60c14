"""errors.csv of a finished run: its validation and test examples, highest loss first (the way to find mislabeled
data: a confident model that disagrees with the gold labels)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from emo_lightning.evaluation.predictions import label_strings
from emo_lightning.evaluation.splits import SplitOutputs, stage_of
from emo_lightning.utils.atomic import atomic_path

ERROR_COLUMNS = ["split", "text", "gold", "predicted", "loss", "correct"]
CLAMP = 1e-7  # probabilities are clamped to [CLAMP, 1 - CLAMP]: a saturated one gives a large, finite loss


def example_losses(probs: torch.Tensor, gold: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Per example: −log p(gold) (single-label), or the mean binary cross-entropy over the labels (multi-label)."""
    p = probs.double().clamp(CLAMP, 1 - CLAMP)
    if multi_label:
        return -(torch.where(gold.bool(), p.log(), (1 - p).log())).mean(dim=1)
    return -p.gather(1, gold.long().argmax(dim=1, keepdim=True)).squeeze(1).log()


def error_rows(
    texts: Mapping[str, Sequence[str]],
    outputs: Mapping[str, SplitOutputs],
    label_names: list[str],
    multi_label: bool,
) -> list[dict]:
    """One row per example of every split in `texts` (split names; `outputs` by stage: val, test), sorted by loss,
    highest first: split, text, gold and predicted labels (joined by ","), loss, correct (the whole label set)."""
    rows = []
    for split, split_texts in texts.items():
        stage = stage_of(split)
        out = outputs[stage]
        losses = example_losses(out.probs, out.gold, multi_label).tolist()
        gold = label_strings(out.gold, label_names)
        predicted = label_strings(out.pred, label_names, out.probs)
        correct = (out.pred == out.gold).all(dim=1).tolist()
        for i, text in enumerate(split_texts):
            rows.append(
                {
                    "split": stage,
                    "text": text,
                    "gold": gold[i],
                    "predicted": predicted[i],
                    "loss": losses[i],
                    "correct": correct[i],
                }
            )
    rows.sort(key=lambda row: -row["loss"])  # stable: equal losses keep the dataset's order
    return rows


def write_errors(path: str | Path, rows: list[dict]) -> None:
    """`rows` as CSV (ERROR_COLUMNS), written under a temporary name and renamed: never a half-written file."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=ERROR_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict]) -> str:
    """`rows` as a Markdown table (TensorBoard's text panel renders it); "|" and newlines in texts escaped."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(ERROR_COLUMNS) + " |", "|" + "---|" * len(ERROR_COLUMNS)]
    lines += ["| " + " | ".join(cell(row[name]) for name in ERROR_COLUMNS) + " |" for row in rows]
    return "\n".join(lines)
