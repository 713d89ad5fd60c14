"""Shared steps of every datamodule: a common label encoding, tokenization, label statistics."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import torch
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase

TEXT = "text"
LABELS = "labels"


@dataclass(frozen=True)
class LabeledSplits:
    """Splits with a `text` column and a `labels` column, plus what the labels mean.

    `labels` holds a class id (single-label) or a multi-hot list of floats (multi-label).
    """

    splits: DatasetDict
    label_names: list[str]
    multi_label: bool


def column_array(ds: Dataset, column: str) -> pa.ChunkedArray:
    """A column of `ds` as arrow, in `ds`'s row order, without reading its other columns."""
    return in_order(ds, ds.data.column(column))


def in_order(ds: Dataset, array: pa.ChunkedArray) -> pa.ChunkedArray:
    """`array`, one value per row of `ds`'s table, in `ds`'s row order. A split held out of a file by `select` is an
    index mapping over the file's table: it is gathered here with one `take` (a `datasets` read of such a split
    gathers every column of its rows one row at a time: seconds and hundreds of MB for a million rows)."""
    mapping = ds._indices  # datasets' index mapping of a `select`ed dataset; None: the table's own rows
    return array if mapping is None else array.take(mapping.column(0))


def multi_hot(label_ids: list[int], num_labels: int) -> list[float]:
    row = [0.0] * num_labels
    for i in label_ids:
        row[i] = 1.0
    return row


def tokenize_splits(
    splits: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    keep_text: bool = False,
    cache_files: dict[str, str] | None = None,
) -> DatasetDict:
    """Tokenize every split once (no padding). Splits that `datasets` loaded from files are cached by it on the
    tokenizer's fingerprint; in-memory ones (a user's files) are not: `cache_files` (`{split: arrow file}`) writes
    each split's result there, and data/token_cache.py keeps them between runs. `keep_text` keeps the `text` column
    beside the tokenizer's."""

    def encode(batch: dict) -> dict:
        return tokenizer(batch[TEXT], truncation=True, max_length=max_length)

    return splits.map(
        encode,
        batched=True,
        remove_columns=None if keep_text else [TEXT],
        cache_file_names=cache_files,
        desc=f"Tokenizing (max_length={max_length})",
    )


def label_counts(train_labels: list, num_labels: int, multi_label: bool) -> torch.Tensor:
    """Number of training examples carrying each label, shape (num_labels,)."""
    if multi_label:
        return torch.tensor(train_labels, dtype=torch.float32).sum(dim=0)
    return torch.bincount(torch.tensor(train_labels, dtype=torch.long), minlength=num_labels).float()
