"""Per-example predictions of a finished run (`predictions/val.csv`, `test.csv`): for reading a model's errors."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from emo_lightning.data.tables import write_table
from emo_lightning.evaluation.splits import SplitOutputs, stage_of
from emo_lightning.utils.atomic import atomic_dir


def label_strings(sets, label_names: list[str], probs=None) -> list[str]:
    """Each row's labels joined by ","; most probable first when `probs` is given, else in label order."""
    rows, scores = [], probs.tolist() if probs is not None else None
    for i, row in enumerate(sets.tolist()):
        picked = [j for j, on in enumerate(row) if on]
        if scores is not None:
            picked.sort(key=lambda j: -scores[i][j])
        rows.append(",".join(label_names[j] for j in picked))
    return rows


def write_split_predictions(
    folder: Path, texts: dict[str, list[str]], outputs: dict[str, SplitOutputs], label_names: list[str]
) -> None:
    """`<folder>/<stage>.csv` per split: one row per example, in the dataset's order, with its text, gold and
    predicted labels, whether they match, and one `prob_<label>` column per label. The folder appears whole or not
    at all."""
    with atomic_dir(folder) as partial:
        partial.mkdir()
        for split, split_texts in texts.items():
            _write_split(partial, split, split_texts, outputs, label_names)


def _write_split(
    folder: Path, split: str, split_texts: list[str], outputs: dict[str, SplitOutputs], label_names: list[str]
) -> None:
    stage = stage_of(split)
    out = outputs[stage]
    columns = {
        "text": list(split_texts),
        "gold": label_strings(out.gold, label_names),
        "predicted": label_strings(out.pred, label_names, out.probs),
        "correct": (out.pred == out.gold).all(dim=1).tolist(),
    }
    probs = out.probs.tolist()
    columns |= {f"prob_{name}": [round(row[j], 5) for row in probs] for j, name in enumerate(label_names)}
    write_table(Dataset.from_dict(columns), folder / f"{stage}.csv", key="predictions file")
