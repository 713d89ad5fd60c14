"""The length-grouped sampler and sorted evaluation batches."""

from __future__ import annotations

import random

import pytest
import torch

from emo_lightning.data.batching import (
    LengthGroupedBatchSampler,
    ShuffledBatchSampler,
    SortedBatchSampler,
    restore_order,
)

_RNG = random.Random(0)
LENGTHS = [_RNG.randint(5, 90) for _ in range(1000)]


def flatten(batches):
    return [i for b in batches for i in b]


def test_every_example_exactly_once_per_epoch():
    sampler = LengthGroupedBatchSampler(LENGTHS, batch_size=32, mega_batch_factor=8)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(flatten(batches)) == list(range(len(LENGTHS)))
        assert len(batches) == len(sampler)
        assert all(len(b) == 32 for b in batches[:-1] if len(b) != 1000 % 32)


def test_batches_have_near_equal_lengths():
    sampler = LengthGroupedBatchSampler(LENGTHS, batch_size=32, mega_batch_factor=8)
    grouped = [max(LENGTHS[i] for i in b) * len(b) for b in sampler]
    shuffled = random.Random(1).sample(range(len(LENGTHS)), len(LENGTHS))
    plain = [max(LENGTHS[i] for i in shuffled[s : s + 32]) * len(shuffled[s : s + 32]) for s in range(0, 1000, 32)]
    real = sum(LENGTHS)
    # lengths uniform in 5..90: a mega-batch of 256 sorted into 8 batches spans ~11 tokens per batch
    assert sum(grouped) < 1.15 * real
    assert sum(plain) > 1.5 * real  # plain shuffling pads far more
    spreads = [max(LENGTHS[i] for i in b) - min(LENGTHS[i] for i in b) for b in sampler]
    assert sum(spreads) / len(spreads) <= 12


def test_order_changes_with_epoch_and_seed_and_is_reproducible():
    def order(seed, epoch):
        s = LengthGroupedBatchSampler(LENGTHS, batch_size=32, seed=seed)
        s.set_epoch(epoch)
        return flatten(s)

    assert order(0, 0) == order(0, 0)  # resuming at an epoch replays its order
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)


def test_batch_order_is_shuffled_not_sorted():
    maxima = [max(LENGTHS[i] for i in b) for b in LengthGroupedBatchSampler(LENGTHS, 32, mega_batch_factor=8)]
    assert maxima != sorted(maxima, reverse=True) and maxima != sorted(maxima)


def shuffled(lengths, batch_size, **kwargs):
    return ShuffledBatchSampler(len(lengths), batch_size, **kwargs)


SAMPLERS = pytest.mark.parametrize("make", [LengthGroupedBatchSampler, shuffled], ids=["grouped", "shuffled"])


@pytest.mark.parametrize("drop_last", [False, True])
def test_plain_shuffled_batches_every_example_once_a_new_order_each_epoch(drop_last):
    sampler = ShuffledBatchSampler(1000, batch_size=32, seed=3, drop_last=drop_last)
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == (31 if drop_last else 32)
        assert all(len(b) == 32 for b in batches[:31])
        assert len(set(flatten(batches))) == len(flatten(batches)) == (992 if drop_last else 1000)
        orders.append(flatten(batches))
    assert orders[0] != orders[1] and orders[0] != sorted(orders[0])
    sampler.set_epoch(0)
    assert flatten(sampler) == orders[0]  # a function of (seed, epoch): a resumed run replays it


@SAMPLERS
@pytest.mark.parametrize("n", [1000, 999])
def test_two_ranks_get_disjoint_complete_shards(n, make):
    lengths = LENGTHS[:n]
    shards = []
    for rank in range(2):
        sampler = make(lengths, 16, num_replicas=2, rank=rank, seed=3)
        sampler.set_epoch(5)
        shards.append(flatten(sampler))
    assert len(shards[0]) == len(shards[1]) == -(-n // 2)  # same number of steps on every rank
    assert set(shards[0]) | set(shards[1]) == set(range(n))
    if n % 2 == 0:
        assert not set(shards[0]) & set(shards[1])
    else:  # one example repeated to even the shards
        assert len(set(shards[0]) & set(shards[1])) == 1


def test_sorted_eval_batches_restore_input_order():
    sampler = SortedBatchSampler(LENGTHS, batch_size=64)
    batches = list(sampler)
    assert [LENGTHS[i] for i in flatten(batches)] == sorted(LENGTHS, reverse=True)
    outputs = torch.cat([torch.tensor(b, dtype=torch.float32) for b in batches]).unsqueeze(1)
    assert restore_order(outputs, sampler.order).squeeze(1).tolist() == list(range(len(LENGTHS)))


def test_predictions_come_back_in_input_order(tiny_cfg, tmp_path):
    from emo_lightning.inference.predictor import EmotionPredictor
    from emo_lightning.train import train

    train(tiny_cfg("logger=none", "trainer.max_steps=2"))
    predictor = EmotionPredictor.from_run(tmp_path, batch_size=2, precision="fp32")  # padding-exact at 1e-5
    texts = ["scared", "i am thrilled and happy about today really very", "i adore you", "so furious", "x"]
    together = predictor.predict_proba(texts)
    one_by_one = torch.cat([predictor.predict_proba([t]) for t in texts])
    assert torch.allclose(together, one_by_one, atol=1e-5)


@SAMPLERS
def test_order_follows_the_trainers_epoch_and_resumes_mid_epoch(make):
    """The epoch is read when the first batch is drawn (not when the iterator was made), and `resume_at` skips the
    batches an interrupted run already trained on, leaving the rest of that epoch in the same order."""
    epoch = {"now": 0}
    sampler = make(LENGTHS, batch_size=4, seed=3, epoch_fn=lambda: epoch["now"])
    made_early = iter(sampler)  # Lightning makes the first iterator before training starts
    epoch["now"] = 1
    first_of_epoch_1 = list(made_early)
    assert first_of_epoch_1 == list(sampler) and first_of_epoch_1 != list(iter_at(sampler, epoch, 0))
    epoch["now"] = 1
    sampler.resume_at(1, batches_done=2)
    assert list(sampler) == first_of_epoch_1[2:]
    assert len(sampler) == len(first_of_epoch_1)  # the epoch's full length, as Lightning counts it
    assert list(sampler) == first_of_epoch_1  # the skip applies once
    sampler.resume_at(0, batches_done=2)  # a position of another epoch: ignored
    assert list(sampler) == first_of_epoch_1


def iter_at(sampler, epoch: dict, value: int):
    epoch["now"] = value
    return list(sampler)
