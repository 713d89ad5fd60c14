"""The lifecycle every emotion dataset shares: load labeled splits, tokenize once, batch with dynamic padding."""

from __future__ import annotations

import logging

import lightning as L
import pyarrow.compute as pc
import torch
from datasets import DatasetDict
from lightning.pytorch.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from emo_lightning.data.batching import LengthGroupedBatchSampler, ShuffledBatchSampler, SortedBatchSampler
from emo_lightning.data.encoding import (
    LABELS,
    LabeledSplits,
    column_array,
    in_order,
    label_counts,
    tokenize_splits,
)
from emo_lightning.data.loading import load_tokenizer
from emo_lightning.utils.errors import ConfigError
from emo_lightning.utils.hardware import dataloader_workers

log = logging.getLogger(__name__)


class TextClassificationDataModule(L.LightningDataModule):
    """Base of the per-dataset datamodules; a subclass only says how to load its `LabeledSplits`.

    Args:
        tokenizer: Hub id or folder of the tokenizer (follows the model by default).
        max_length: truncation length in tokens; batches are padded only to their longest text.
        batch_size: training batch size.
        eval_batch_size: batch size for validation, test and prediction (no gradients, so larger).
        num_workers: DataLoader worker processes; None picks per machine (0 on CPU, a few on GPU).
        pad_to_multiple_of: pad batch length up to a multiple of this (8 suits tensor cores).
        length_grouped: draw training batches of near-equal length (`LengthGroupedBatchSampler`);
            False gives plain shuffled batches (`ShuffledBatchSampler`). Both resume mid-epoch in their order.
            Evaluation batches are always sorted by length.
        mega_batch_factor: how many batches' worth of examples are length-sorted together.
        seed: seeds the training order (a different order each epoch).
        data_dir: local mirror of datasets (folders named by Hub id).
        model_dir: local mirror of models, where the tokenizer is looked up.
    """

    def __init__(
        self,
        tokenizer: str,
        max_length: int,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        num_workers: int | None = None,
        pad_to_multiple_of: int | None = None,
        length_grouped: bool = True,
        mega_batch_factor: int = 50,
        seed: int = 0,
        data_dir: str | None = None,
        model_dir: str | None = None,
    ) -> None:
        super().__init__()
        if max_length < 2 or batch_size < 1 or eval_batch_size < 1:
            raise ConfigError("data.max_length must be ≥ 2 and data.batch_size, data.eval_batch_size ≥ 1")
        self.tokenizer_name = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pad_to_multiple_of = pad_to_multiple_of
        self.length_grouped = length_grouped
        self.mega_batch_factor = mega_batch_factor
        self.seed = seed
        self.data_dir = data_dir
        self.model_dir = model_dir
        self.labeled: LabeledSplits | None = None
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.tokenized = None
        self._resume_position: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        """Where training is in its data (saved in checkpoints): the epoch and how many of its batches were trained on.

        Read from the trainer's own progress, not from the loader, which may have drawn batches ahead.
        """
        if self.trainer is None:
            return {}
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.ready
        return {"epoch": self.trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if state_dict:
            self._resume_position = (state_dict["epoch"], state_dict["batches_done"])

    @property
    def name(self) -> str:
        """Short dataset name for messages."""
        raise NotImplementedError

    def load_splits(self) -> LabeledSplits:
        """Return train/validation(/test) splits with `text` and `labels` columns."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.tokenized is not None:
            return
        self.tokenizer = load_tokenizer(self.tokenizer_name, self.model_dir)
        self.labeled, self.tokenized = self.load_tokenized()
        log.info(
            "%s: %s, %d labels (%s)",
            self.name,
            ", ".join(f"{k} {len(v)}" for k, v in self.tokenized.items()),
            self.num_labels,
            "multi-label" if self.multi_label else "single-label",
        )

    def load_tokenized(self) -> tuple[LabeledSplits, DatasetDict]:
        """The labeled splits and their tokenization by `self.tokenizer` (FilesDataModule reuses an earlier run's)."""
        labeled = self.load_splits()
        self.check_fit_splits(set(labeled.splits))
        return labeled, tokenize_splits(labeled.splits, self.tokenizer, self.max_length)

    def check_fit_splits(self, splits: set[str]) -> None:
        missing = {"train", "validation"} - splits
        if missing:
            raise ConfigError(f"{self.name} has no {sorted(missing)} split: give the file or a validation fraction")

    @property
    def label_names(self) -> list[str]:
        return self.labeled.label_names

    @property
    def multi_label(self) -> bool:
        return self.labeled.multi_label

    @property
    def num_labels(self) -> int:
        return len(self.labeled.label_names)

    @property
    def has_test(self) -> bool:
        return "test" in self.tokenized

    def train_label_counts(self) -> torch.Tensor:
        """Examples per label in the training split, shape (num_labels,)."""
        train = self.labeled.splits["train"]
        return label_counts(column_array(train, LABELS).to_pylist(), self.num_labels, self.multi_label)

    def collate(self):
        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

    def lengths(self, split: str) -> list[int]:
        """Token count of every example of `split`, from the arrow offsets of its `input_ids` (no lists of ids)."""
        tokenized = self.tokenized[split]
        return in_order(tokenized, pc.list_value_length(tokenized.data.column("input_ids"))).to_pylist()

    def workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        on_gpu = self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator)
        return dataloader_workers(on_gpu)

    def _loader(self, split: str, batch_sampler: Sampler) -> DataLoader:
        workers = self.workers()
        return DataLoader(
            self.tokenized[split],
            batch_sampler=batch_sampler,
            collate_fn=self.collate(),
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Seeded, per-epoch shuffled batches (length-grouped or plain), this DDP rank's shard, resumable mid-epoch."""
        world_size, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        common = {
            "seed": self.seed,
            "num_replicas": world_size,
            "rank": rank,
            "epoch_fn": (lambda: self.trainer.current_epoch) if self.trainer else None,
        }
        if self.length_grouped:
            lengths = self.lengths("train")
            sampler = LengthGroupedBatchSampler(lengths, self.batch_size, self.mega_batch_factor, **common)
        else:
            sampler = ShuffledBatchSampler(len(self.tokenized["train"]), self.batch_size, **common)
        if self._resume_position is not None:  # a resumed run continues mid-epoch where its checkpoint was saved
            sampler.resume_at(*self._resume_position)
            self._resume_position = None
        return self._loader("train", sampler)

    def eval_dataloader(self, split: str) -> DataLoader:
        """Every example of `split` once (this DDP rank's share of them), in length-sorted batches (little padding);
        metrics sync over ranks, so they are the whole split's."""
        world_size, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        sampler = SortedBatchSampler(self.lengths(split), self.eval_batch_size, num_replicas=world_size, rank=rank)
        return self._loader(split, sampler)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("validation")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")
