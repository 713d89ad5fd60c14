"""Shared steps of every datamodule: a common label encoding, tokenization, label statistics."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from datasets import DatasetDict
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


def multi_hot(label_ids: list[int], num_labels: int) -> list[float]:
    row = [0.0] * num_labels
    for i in label_ids:
        row[i] = 1.0
    return row


def tokenize_splits(splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> DatasetDict:
    """Tokenize every split once (no padding; cached by `datasets` on the tokenizer's fingerprint)."""

    def encode(batch: dict) -> dict:
        return tokenizer(batch[TEXT], truncation=True, max_length=max_length)

    return splits.map(encode, batched=True, remove_columns=[TEXT], desc=f"Tokenizing (max_length={max_length})")


def label_counts(train_labels: list, num_labels: int, multi_label: bool) -> torch.Tensor:
    """Number of training examples carrying each label, shape (num_labels,)."""
    if multi_label:
        return torch.tensor(train_labels, dtype=torch.float32).sum(dim=0)
    return torch.bincount(torch.tensor(train_labels, dtype=torch.long), minlength=num_labels).float()
