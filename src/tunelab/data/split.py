"""Seeded, reproducible train/validation/test assignment: stratified, grouped, or from explicit files.

Rows that must stay together (same ``group_by`` value, or a near-duplicate cluster kept whole) form
one component; components are shuffled with the seed, taken largest first, and each goes to the
split that most lacks its labels relative to its target share. With singleton components this is a
stratified split; with groups it is a stratified group split. Components holding a row from an
explicit validation/test file go to that split.

A stratum is the label itself for a name or a label set (the whole set, as a tuple). Numeric labels
(regression targets) are binned into quantiles first: every distinct float would otherwise be its
own stratum, which balances nothing; with bins each split gets its share of low, middle and high
targets.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from tunelab.config.data import SPLITS, SplitConfig
from tunelab.data.minhash import UnionFind
from tunelab.data.records import SPLIT_PRIORITY, Record, is_number

NUMERIC_BINS = 5  # quantile bins that stratify numeric labels


def components(records: Sequence[Record], together: Sequence[Sequence[int]] = ()) -> list[list[int]]:
    """Indices that must share a split: same group value, or listed together (near-dup clusters)."""
    uf = UnionFind(len(records))
    first_of_group: dict[str, int] = {}
    for i, rec in enumerate(records):
        if rec.group is not None:
            j = first_of_group.setdefault(rec.group, i)
            uf.union(i, j)
    for members in together:
        for k in members[1:]:
            uf.union(members[0], k)
    return sorted(uf.groups().values(), key=lambda m: m[0])


def assign(
    records: Sequence[Record], cfg: SplitConfig, seed: int, together: Sequence[Sequence[int]] = ()
) -> tuple[list[str], list[tuple[int, str]]]:
    """Return each row's split, and rows to drop because their component spans two explicit splits."""
    splits: list[str] = [""] * len(records)
    conflicts: list[tuple[int, str]] = []
    free: list[list[int]] = []
    for comp in components(records, together):
        pins = {records[i].pin for i in comp if records[i].pin}
        if not pins:
            free.append(comp)
            continue
        target = max(pins, key=lambda p: SPLIT_PRIORITY[p])
        for i in comp:
            if records[i].pin and records[i].pin != target:
                conflicts.append(
                    (
                        i,
                        f"shares a group or near-duplicate cluster with rows of the explicit "
                        f"{target} file, so keeping it in {records[i].pin} would leak",
                    )
                )
            splits[i] = target
    ratios = _ratios(records, cfg)
    _greedy(records, free, ratios, cfg.stratify, seed, splits)
    return splits, conflicts


def _ratios(records: Sequence[Record], cfg: SplitConfig) -> dict[str, float]:
    # An explicit validation or test file replaces that ratio: no free rows are drawn into it.
    pinned = {r.pin for r in records if r.pin}
    val = 0.0 if "validation" in pinned else cfg.validation
    test = 0.0 if "test" in pinned else cfg.test
    return {"train": 1.0 - val - test, "validation": val, "test": test}


def _greedy(
    records: Sequence[Record],
    comps: list[list[int]],
    ratios: dict[str, float],
    stratify: bool,
    seed: int,
    out: list[str],
) -> None:
    rng = random.Random(seed)
    comps = list(comps)
    rng.shuffle(comps)
    comps.sort(key=len, reverse=True)  # stable: equal sizes keep the seeded order

    strata = _strata(records, stratify)

    def stratum(i: int) -> Hashable:
        return strata[i]

    totals = Counter(stratum(i) for comp in comps for i in comp)
    target = {s: {k: ratios[s] * n for k, n in totals.items()} for s in SPLITS}
    have = {s: Counter() for s in SPLITS}
    live = [s for s in SPLITS if ratios[s] > 0]
    for comp in comps:
        counts = Counter(stratum(i) for i in comp)

        def need(s: str, counts: Counter = counts) -> float:
            # share of this component's strata that split s still lacks, relative to its target
            want = sum(c * target[s][k] for k, c in counts.items())
            got = sum(c * have[s][k] for k, c in counts.items())
            return (want - got) / want if want else float("-inf")

        best = max(live, key=need)  # ties go to the first in SPLITS order (train)
        for i in comp:
            out[i] = best
        have[best].update(counts)


def _strata(records: Sequence[Record], stratify: bool) -> list[Hashable]:
    """Each row's stratum: its label (name or set), a quantile bin of a number, or one for all."""
    if not stratify:
        return [""] * len(records)
    values = [float(r.label) for r in records if is_number(r.label)]  # type: ignore[arg-type]
    edges = np.quantile(values, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]) if values else np.empty(0)
    out: list[Hashable] = []
    for r in records:
        if is_number(r.label):
            out.append(f"quantile-{int(np.searchsorted(edges, r.label, side='right'))}")
        else:
            out.append(r.label if r.label is not None else "")
    return out
