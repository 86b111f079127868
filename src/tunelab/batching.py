"""Batch order: seeded, length-grouped, resumable, and shardable across processes.

We build batches of feature indices ourselves (rather than a shuffled DataLoader) so that the
order is a pure function of (seed, epoch): a resumed run skips the batches it has done and sees
exactly the same data as an uninterrupted run.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from typing import Any

IGNORE = -100
# Sort within windows of this many batches: enough to cut padding, still well shuffled.
GROUP_WINDOW = 50


def epoch_batches(
    lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool = True
) -> list[list[int]]:
    """Index batches for one epoch. With grouping, similar lengths share a batch (less padding)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        window = batch_size * GROUP_WINDOW
        order = [
            i
            for start in range(0, len(order), window)
            for i in sorted(order[start : start + window], key=lambda k: lengths[k])
        ]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)  # otherwise every window would run short-to-long
    return batches


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (the padded length of a row of ``n`` tokens)."""
    return -(-n // multiple) * multiple


def token_batches(
    lengths: list[int], budget: int, seed: int, epoch: int, group_by_length: bool = True, multiple: int = 1
) -> list[list[int]]:
    """Index batches for one epoch built by a token budget: rows x padded length <= ``budget``.

    The order is the one :func:`epoch_batches` draws (the same seeded shuffle, sorted within windows
    of about ``GROUP_WINDOW`` batches), cut greedily wherever one more row would overflow the budget,
    so each step carries similar work. The padded length of a batch is its longest row rounded up to
    ``multiple``. An example longer than the budget gets a batch of its own (see
    :func:`over_budget`). With every length equal, this is exactly ``epoch_batches`` at
    ``budget // length`` rows. A pure function of (seed, epoch), like ``epoch_batches``.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length and order:
        mean = sum(round_up(n, multiple) for n in lengths) / len(lengths)
        window = max(1, budget // max(1, round(mean))) * GROUP_WINDOW
        order = [
            i
            for start in range(0, len(order), window)
            for i in sorted(order[start : start + window], key=lambda k: lengths[k])
        ]
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        wider = max(width, round_up(lengths[i], multiple))
        if current and wider * (len(current) + 1) > budget:
            batches.append(current)
            current, wider = [], round_up(lengths[i], multiple)
        current.append(i)
        width = wider
    if current:
        batches.append(current)
    if group_by_length:
        rng.shuffle(batches)
    return batches


def over_budget(batches: list[list[int]], lengths: list[int], budget: int, multiple: int = 1) -> int:
    """How many batches exceed ``budget``: single examples longer than the budget on their own."""
    return sum(1 for b in batches if len(b) * max(round_up(lengths[i], multiple) for i in b) > budget)


def deal(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's token-budget batches: every ``world``-th one, from ``rank``.

    A token-budget batch is already one device's work, so processes take whole batches in turn
    (rather than slices of one, as :func:`shard` does); the tail that cannot give every process
    a batch is dropped, so all processes step together.
    """
    if world == 1:
        return batches
    return batches[: len(batches) - len(batches) % world][rank::world]


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's slice of each global batch.

    Batches are built at the global size (per-device size x processes) and each process takes
    one contiguous slice, so N processes see exactly the batches one process would see at the
    global size. A final batch too small to give every process a row is dropped.
    """
    if world == 1:
        return batches
    out = []
    for b in batches:
        if len(b) < world:
            continue
        size = -(-len(b) // world)
        out.append(b[rank * size : (rank + 1) * size] or b[-1:])
    return out


def eval_batches(features: list[dict[str, Any]], task, tokenizer, batch_size: int) -> Iterator[dict]:
    """Batches for evaluation, sorted by length for speed; order of examples is preserved per batch."""
    for start in range(0, len(features), batch_size):
        yield task.collate(features[start : start + batch_size], tokenizer)


def pack_features(features: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Pack token features into rows of at most ``max_length`` tokens (best-fit decreasing).

    Each row concatenates whole examples; ``position_ids`` restart at 0 for every example, which is
    what tells the attention mask where one example ends (see ``SFTTask.forward``). The first label
    of each example is set to -100: in a packed row the token before it belongs to another example.
    """
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    rows: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (free tokens, row id), sorted: the tightest fit is a bisect away
    for i in order:
        n = len(features[i]["input_ids"])
        if n > max_length:
            raise ValueError(f"a feature of {n} tokens does not fit a packed row of {max_length}")
        at = bisect.bisect_left(room, (n, -1))
        if at == len(room):
            rows.append([i])
            free, row = max_length - n, len(rows) - 1
        else:
            free, row = room.pop(at)
            rows[row].append(i)
            free -= n
        bisect.insort(room, (free, row))
    return [_concat([features[i] for i in row]) for row in rows]


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    ids, labels, positions = [], [], []
    for f in parts:
        ids += f["input_ids"]
        labels += [IGNORE, *f["labels"][1:]]
        positions += range(len(f["input_ids"]))
    return {"input_ids": ids, "labels": labels, "position_ids": positions, "examples": len(parts)}
