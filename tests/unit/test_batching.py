"""Batch order is a pure function of (seed, epoch), groups lengths, shards evenly, and keeps token budgets."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tunelab.batching import deal, epoch_batches, over_budget, round_up, shard, token_batches


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


# ---- token budgets ------------------------------------------------------------------------------

budget_cases = st.fixed_dictionaries({
    "lengths": st.lists(st.integers(1, 300), min_size=0, max_size=400),
    "budget": st.integers(8, 2048),
    "multiple": st.sampled_from([1, 8, 16, 32, 64]),
    "seed": st.integers(0, 10_000),
    "epoch": st.integers(0, 5),
    "group": st.booleans(),
})


@settings(max_examples=300, deadline=None)
@given(case=budget_cases)
def test_token_batches_keep_the_budget_and_cover_every_example_once(case):
    lengths, budget, multiple = case["lengths"], case["budget"], case["multiple"]
    batches = token_batches(lengths, budget, case["seed"], case["epoch"], case["group"], multiple)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(b for b in batches)
    too_long = {i for i, n in enumerate(lengths) if round_up(n, multiple) > budget}
    for b in batches:
        cost = len(b) * max(round_up(lengths[i], multiple) for i in b)
        if cost > budget:  # only an over-budget example, alone
            assert len(b) == 1 and b[0] in too_long
    assert over_budget(batches, lengths, budget, multiple) == len(too_long)
    again = token_batches(lengths, budget, case["seed"], case["epoch"], case["group"], multiple)
    assert again == batches, "a pure function of (seed, epoch)"


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 300), length=st.integers(1, 64), rows=st.integers(1, 16), seed=st.integers(0, 99),
       group=st.booleans())
def test_token_batches_of_equal_lengths_are_the_fixed_size_batches(n, length, rows, seed, group):
    """The same order as epoch_batches: a budget of rows x length gives exactly its batches."""
    lengths = [length] * n
    fixed = epoch_batches(lengths, rows, seed, 1, group)
    assert token_batches(lengths, rows * length, seed, 1, group) == fixed


def test_token_batches_fill_the_budget_and_vary_by_epoch():
    rng = random.Random(1)
    lengths = [rng.randint(5, 120) for _ in range(3000)]
    batches = token_batches(lengths, 1024, seed=0, epoch=0)
    used = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert used > 0.85 * 1024 * len(batches), "grouped lengths leave little of each budget unused"
    assert len({len(b) for b in batches}) > 5, "short rows come many to a batch, long rows few"
    assert batches != token_batches(lengths, 1024, seed=0, epoch=1)
    plain = token_batches(lengths, 1024, seed=0, epoch=0, group_by_length=False)
    assert len(batches) < 0.8 * len(plain), "grouping packs more rows into each budget"


def test_deal_gives_processes_whole_batches_in_turn():
    batches = [[i] for i in range(7)]
    parts = [deal(batches, r, 3) for r in range(3)]
    assert parts == [[[0], [3]], [[1], [4]], [[2], [5]]], "the tail that cannot feed every process is dropped"
    assert deal(batches, 0, 1) == batches
