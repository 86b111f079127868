"""Batch order is a pure function of (seed, epoch), groups lengths, and shards evenly."""

from __future__ import annotations

import random

from tunelab.batching import epoch_batches, shard


def test_order_is_deterministic_and_covers_every_row_once():
    lengths = [random.Random(i).randint(1, 100) for i in range(1000)]
    a = epoch_batches(lengths, 16, seed=3, epoch=2)
    assert a == epoch_batches(lengths, 16, seed=3, epoch=2)
    assert a != epoch_batches(lengths, 16, seed=3, epoch=3)
    assert sorted(i for b in a for i in b) == list(range(1000))


def test_grouping_cuts_padding():
    rng = random.Random(0)
    lengths = [rng.randint(5, 120) for _ in range(4000)]

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    grouped = padded(epoch_batches(lengths, 32, 0, 0, group_by_length=True))
    plain = padded(epoch_batches(lengths, 32, 0, 0, group_by_length=False))
    assert grouped < 0.7 * plain


def test_shards_split_each_global_batch_between_processes():
    batches = [list(range(i * 8, i * 8 + 8)) for i in range(5)] + [[40]]
    parts = [shard(batches, r, 2) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 5, "the one-row tail cannot feed two processes"
    for k in range(5):
        assert sorted(parts[0][k] + parts[1][k]) == batches[k]
    assert shard(batches, 0, 1) == batches
