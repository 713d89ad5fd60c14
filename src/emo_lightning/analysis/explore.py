"""`task=explore`: what a dataset holds before any training — label frequency, text lengths, co-occurrence,
duplicates — as PNGs and a summary.md with the `max_length` the token lengths suggest. Tokenizer only, no weights."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from emo_lightning.analysis import explore_figures as figures
from emo_lightning.data.encoding import LABELS, TEXT
from emo_lightning.utils.atomic import atomic_write_text, refuse_to_overwrite

log = logging.getLogger(__name__)

SUMMARY = "summary.md"
SINGLE_LABEL_FIGURES = ("label_frequency.png", "text_length.png")
MULTI_LABEL_FIGURES = ("label_cooccurrence.png", "labels_per_text.png")
PERCENTILES = (50, 90, 99)
EXAMPLES = 5
NO_LIMIT = 1_000_000  # tokenizers without a length limit report a huge model_max_length


@dataclass(frozen=True)
class SplitData:
    """One split as plain lists: its texts, the label ids of each text, and their lengths in words and tokens."""

    texts: list[str]
    label_ids: list[list[int]]
    words: list[int]
    tokens: list[int]


@dataclass(frozen=True)
class Duplicates:
    """Texts occurring more than once in a split, or in two splits; `examples` holds a few of them."""

    where: str
    texts: int
    rows: int
    conflicting: int | None
    examples: list[str]


def run_explore(cfg: DictConfig, output_dir: Path) -> Path:
    """Explore `cfg.data` into `output_dir`; return the summary.md written there."""
    output_dir = Path(output_dir)
    refuse_to_overwrite(output_dir, (SUMMARY, *SINGLE_LABEL_FIGURES, *MULTI_LABEL_FIGURES), "an exploration")
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    names, multi_label = list(datamodule.label_names), datamodule.multi_label
    splits = {
        split: split_data(datamodule.labeled.splits[split], datamodule.tokenizer, multi_label)
        for split in ("train", "validation", "test")
        if split in datamodule.labeled.splits
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    draw_figures(splits, names, multi_label, output_dir)
    summary = output_dir / SUMMARY
    limit = model_limit(datamodule.tokenizer)
    atomic_write_text(summary, summary_markdown(datamodule.name, splits, names, multi_label, limit, datamodule))
    log.info("explore: %s and its figures in %s", SUMMARY, output_dir)
    return summary


def split_data(dataset, tokenizer, multi_label: bool) -> SplitData:
    texts = list(dataset[TEXT])
    labels = list(dataset[LABELS])
    label_ids = [[i for i, v in enumerate(row) if v > 0.5] for row in labels] if multi_label else [[y] for y in labels]
    tokens = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    return SplitData(texts, label_ids, [len(text.split()) for text in texts], tokens)


def label_counts(split: SplitData, num_labels: int) -> list[int]:
    counts = [0] * num_labels
    for ids in split.label_ids:
        for i in ids:
            counts[i] += 1
    return counts


def lengths_by_label(split: SplitData, names: list[str], unit: str) -> dict[str, list[int]]:
    """Lengths (`words` or `tokens`) of the texts carrying each label; a multi-label text counts for each label."""
    by_label: dict[str, list[int]] = {name: [] for name in names}
    for ids, length in zip(split.label_ids, getattr(split, unit)):
        for i in ids:
            by_label[names[i]].append(length)
    return by_label


def cooccurrence(split: SplitData, num_labels: int) -> np.ndarray:
    """Texts carrying both labels, shape (num_labels, num_labels); the diagonal holds each label's count."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    for ids in split.label_ids:
        for i in ids:
            for j in ids:
                matrix[i, j] += 1
    return matrix


def draw_figures(splits: dict[str, SplitData], names: list[str], multi_label: bool, output_dir: Path) -> None:
    counts = {split: label_counts(data, len(names)) for split, data in splits.items()}
    sizes = {split: len(data.texts) for split, data in splits.items()}
    figures.plot_label_frequency(counts, sizes, names, output_dir / "label_frequency.png")
    train = splits["train"]
    words, tokens = lengths_by_label(train, names, "words"), lengths_by_label(train, names, "tokens")
    figures.plot_text_lengths(words, tokens, output_dir / "text_length.png", "train")
    if multi_label:
        figures.plot_cooccurrence(
            cooccurrence(train, len(names)), names, output_dir / "label_cooccurrence.png", "train"
        )
        per_text = {split: dict(Counter(len(ids) for ids in data.label_ids)) for split, data in splits.items()}
        figures.plot_labels_per_text(per_text, output_dir / "labels_per_text.png")


def model_limit(tokenizer) -> int | None:
    """The longest input the tokenizer's model takes, or None when it states no limit."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < NO_LIMIT else None


def suggested_max_length(tokens: list[int], limit: int | None) -> int:
    """The 99th percentile of the token lengths rounded up to a multiple of 8, at most the model's limit."""
    suggestion = max(8, 8 * math.ceil(float(np.percentile(tokens, 99)) / 8))
    return min(suggestion, limit) if limit else suggestion


def within_split_duplicates(split: str, data: SplitData) -> Duplicates:
    counts = Counter(data.texts)
    repeated = [text for text, count in counts.items() if count > 1]
    labels_of: dict[str, set[tuple[int, ...]]] = {}
    for text, ids in zip(data.texts, data.label_ids):
        if counts[text] > 1:
            labels_of.setdefault(text, set()).add(tuple(ids))
    conflicting = sum(len(sets) > 1 for sets in labels_of.values())
    rows = sum(counts[text] for text in repeated)
    return Duplicates(f"within {split}", len(repeated), rows, conflicting, repeated[:EXAMPLES])


def cross_split_duplicates(first: str, second: str, splits: dict[str, SplitData]) -> Duplicates:
    in_second = set(splits[second].texts)
    shared = list(dict.fromkeys(text for text in splits[first].texts if text in in_second))
    shared_set = set(shared)
    rows = sum(text in shared_set for name in (first, second) for text in splits[name].texts)
    return Duplicates(f"{first} and {second}", len(shared), rows, None, shared[:EXAMPLES])


def all_duplicates(splits: dict[str, SplitData]) -> list[Duplicates]:
    names = list(splits)
    found = [within_split_duplicates(split, data) for split, data in splits.items()]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    return found + [cross_split_duplicates(a, b, splits) for a, b in pairs]


def shown(text: str, width: int = 100) -> str:
    """A text as one line of markdown: its repr (quotes, escaped newlines), shortened, `|` escaped."""
    short = text if len(text) <= width else text[: width - 1] + "…"
    return repr(short).replace("|", "\\|")


def percentile_cells(values: list[int]) -> list[str]:
    return [f"{np.percentile(values, p):.0f}" for p in PERCENTILES] + [str(max(values))]


def summary_markdown(
    dataset: str, splits: dict[str, SplitData], names: list[str], multi_label: bool, limit: int | None, datamodule
) -> str:
    total = sum(len(data.texts) for data in splits.values())
    counts = {split: label_counts(data, len(names)) for split, data in splits.items()}
    train_counts = counts["train"]
    lines = [
        f"# explore: {dataset}",
        "",
        f"{len(names)} labels, {'multi-label' if multi_label else 'single-label'}; "
        f"tokens by {datamodule.tokenizer_name} (with special tokens, not truncated).",
        "",
        "## splits",
        "",
        "| split | texts | share |",
        "|---|---:|---:|",
        *(f"| {split} | {len(d.texts):,} | {len(d.texts) / total:.1%} |" for split, d in splits.items()),
        "",
        "## labels",
        "",
        imbalance_line(train_counts, names),
        "",
        "| label | " + " | ".join(f"{split} texts | {split} share" for split in splits) + " |",
        "|---|" + "---:|---:|" * len(splits),
    ]
    for i, name in sorted(enumerate(names), key=lambda item: -train_counts[item[0]]):
        cells = [f"{counts[s][i]:,} | {counts[s][i] / max(len(d.texts), 1):.1%}" for s, d in splits.items()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## labels per text", ""]
    if multi_label:
        lines += [
            "| split | multi-label share (≥ 2 labels) | no label | mean labels per text |",
            "|---|---:|---:|---:|",
        ]
        for split, data in splits.items():
            per_text = [len(ids) for ids in data.label_ids]
            several, none = sum(n >= 2 for n in per_text), sum(n == 0 for n in per_text)
            lines.append(
                f"| {split} | {several / len(per_text):.1%} | {none / len(per_text):.1%} | {np.mean(per_text):.2f} |"
            )
    else:
        lines.append("multi-label share: 0% (single-label: exactly one label per text)")
    all_tokens = [n for data in splits.values() for n in data.tokens]
    truncated = sum(n > datamodule.max_length for n in all_tokens) / len(all_tokens)
    suggestion = suggested_max_length(all_tokens, limit)
    lines += [
        "",
        "## text length",
        "",
        "| split | words p50 | p90 | p99 | max | tokens p50 | p90 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {split} | " + " | ".join(percentile_cells(d.words) + percentile_cells(d.tokens)) + " |"
            for split, d in splits.items()
        ),
        "",
        f"suggested max_length: **{suggestion}** (p99 of all splits' token lengths rounded up to a multiple of 8"
        + (f", at most the model's limit {limit})" if limit else "; the tokenizer states no limit)"),
        f"now data.max_length={datamodule.max_length}: it truncates {truncated:.2%} of the texts.",
        "",
        "## duplicated texts (exact match)",
        "",
        *duplicate_lines(all_duplicates(splits)),
        "",
        "## figures",
        "",
        "- label_frequency.png: the share of each split's texts carrying each label",
        "- text_length.png: words and tokens per text, by label (train)",
    ]
    if multi_label:
        lines += [
            "- label_cooccurrence.png: of the texts with the row label, the share also carrying the column label",
            "- labels_per_text.png: the share of texts with 0, 1, 2, … labels, per split",
        ]
    return "\n".join(lines) + "\n"


def imbalance_line(train_counts: list[int], names: list[str]) -> str:
    most, least = max(train_counts), min(train_counts)
    top, bottom = names[train_counts.index(most)], names[train_counts.index(least)]
    ratio = f"{most / least:.1f}" if least else "∞"
    return f"imbalance ratio (train, most / least frequent label): **{ratio}** ({top} {most:,} / {bottom} {least:,})"


def duplicate_lines(found: list[Duplicates]) -> list[str]:
    lines = []
    for dup in found:
        if not dup.texts:
            lines.append(f"- {dup.where}: none")
            continue
        if dup.conflicting is None:
            lines.append(f"- {dup.where}: {dup.texts:,} texts occur in both ({dup.rows:,} rows), e.g.")
        else:
            lines.append(
                f"- {dup.where}: {dup.texts:,} texts occur more than once ({dup.rows:,} rows, "
                f"{dup.conflicting:,} of these texts with different labels), e.g."
            )
        lines += [f"  - {shown(text)}" for text in dup.examples]
    return lines
