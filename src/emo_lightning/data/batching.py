"""Batching that spends compute on text, not padding.

Emotion texts are short and their lengths vary (MiniLM tokens on emotion: mean 22, p99 57, max 87), so
padding to a fixed or dataset-wide length wastes most of the encoder's work. Training batches are drawn
from length-sorted mega-batches (random, but of near-equal lengths), or plainly shuffled; either order is a function
of (seed, epoch), so a resumed run continues it mid-epoch. Evaluation batches are sorted by length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """Training batches in a seeded random order, a different one every epoch, sharded per DDP rank, resumable.

    DDP: every rank gets a disjoint shard of the same size (the permutation is padded by repeating its head
    when the dataset does not divide evenly), so all ranks step the same number of times.
    Epochs: `epoch_fn` (e.g. the trainer's current epoch) is read when an epoch's first batch is drawn, so the order
    follows the run's epoch whoever created the iterator and when; without it, `set_epoch` sets the epoch.
    Resuming: the order is a pure function of (seed, epoch); `resume_at(epoch, batches_done)` makes that epoch's
    iteration skip the batches already trained on (len() stays the epoch's full length, as Lightning expects).
    A subclass says how an epoch's shuffled shard is cut into batches (`_cut`) and how many there are (`__len__`).
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        epoch_fn: Callable[[], int] | None = None,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.epoch = 0
        self.epoch_fn = epoch_fn
        self.shard_size = -(-num_examples // num_replicas)  # ceil
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """The next iteration over `epoch` starts after its first `batches_done` batches."""
        self._resume = (epoch, batches_done)

    def _shard(self, generator: torch.Generator) -> list[int]:
        order = torch.randperm(self.num_examples, generator=generator).tolist()
        padded = order + order[: self.shard_size * self.num_replicas - len(order)]
        return padded[self.rank :: self.num_replicas]

    def _cut(self, shard: list[int], generator: torch.Generator) -> list[list[int]]:
        raise NotImplementedError

    def _batches(self) -> list[list[int]]:
        if self.epoch_fn is not None:
            self.epoch = self.epoch_fn()
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return self._cut(self._shard(generator), generator)

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: nothing is drawn until the first batch is asked for, when the epoch is known.
        batches = self._batches()
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1]
        self._resume = None
        yield from batches[skip:]


class ShuffledBatchSampler(EpochBatchSampler):
    """Plain shuffled batches (`data.length_grouped=false`): the epoch's shuffled shard cut in order."""

    def _cut(self, shard: list[int], generator: torch.Generator) -> list[list[int]]:
        batches = [shard[i : i + self.batch_size] for i in range(0, len(shard), self.batch_size)]
        return [b for b in batches if len(b) == self.batch_size] if self.drop_last else batches

    def __len__(self) -> int:
        if self.drop_last:
            return self.shard_size // self.batch_size
        return -(-self.shard_size // self.batch_size)


class LengthGroupedBatchSampler(EpochBatchSampler):
    """Random batches of near-equal length, a different order every epoch.

    Each epoch: shuffle all indices (seeded by `seed + epoch`), take this rank's shard, cut it into
    mega-batches of `batch_size * mega_batch_factor`, sort each by length, slice into batches, and shuffle
    the batches, so that long and short batches alternate and loss curves don't oscillate. Sharding, epochs and
    resuming: `EpochBatchSampler`.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        mega_batch_factor: int = 50,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        epoch_fn: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(len(lengths), batch_size, seed, num_replicas, rank, drop_last, epoch_fn)
        self.lengths = list(lengths)
        self.mega_batch_size = batch_size * max(1, mega_batch_factor)

    def _cut(self, shard: list[int], generator: torch.Generator) -> list[list[int]]:
        batches = []
        for start in range(0, len(shard), self.mega_batch_size):
            mega = sorted(shard[start : start + self.mega_batch_size], key=self.lengths.__getitem__, reverse=True)
            batches += [mega[i : i + self.batch_size] for i in range(0, len(mega), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def __len__(self) -> int:
        full, rest = divmod(self.shard_size, self.mega_batch_size)
        per_mega = self.mega_batch_size // self.batch_size
        if self.drop_last:
            return full * per_mega + rest // self.batch_size
        return full * per_mega + -(-rest // self.batch_size)


class SortedBatchSampler(Sampler[list[int]]):
    """Evaluation batches in order of decreasing length; `order` maps batch positions back to inputs.

    DDP (`num_replicas` > 1): each rank takes every `num_replicas`-th example of the length order (similar lengths on
    every rank, no example twice, so metrics synced over ranks are the whole split's), cut into the same number of
    batches on every rank (ranks meet in collectives at each step; batches are at most `batch_size`).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, num_replicas: int = 1, rank: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        everything = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        self.order = everything[rank::num_replicas]
        self.batch_size = batch_size
        largest_shard = -(-len(everything) // num_replicas)
        self.num_batches = -(-largest_shard // batch_size) if num_replicas > 1 else -(-len(self.order) // batch_size)
        self.num_replicas = num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        if self.num_replicas == 1:
            for start in range(0, len(self.order), self.batch_size):
                yield self.order[start : start + self.batch_size]
            return
        per_batch, extra = divmod(len(self.order), self.num_batches)  # sizes differ by at most one
        start = 0
        for i in range(self.num_batches):
            end = start + per_batch + (1 if i < extra else 0)
            yield self.order[start:end]
            start = end

    def __len__(self) -> int:
        return self.num_batches


def restore_order(outputs: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    """Rows produced in `order` (e.g. a SortedBatchSampler's) put back in input order."""
    restored = torch.empty_like(outputs)
    restored[torch.as_tensor(order)] = outputs
    return restored
