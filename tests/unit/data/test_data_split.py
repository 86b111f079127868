"""Splits: stratified, grouped, pinned (explicit files), near-duplicate clusters kept together; seeded."""

from __future__ import annotations

from collections import Counter

from tunelab.config.data import SplitConfig
from tunelab.data.records import Record
from tunelab.data.split import assign


def rows(n: int, groups: int | None = None, labels: str = "aab") -> list[Record]:
    return [
        Record(
            source=f"f:{i}",
            raw=None,
            origin=0,
            text=f"t{i}",
            label=labels[i % len(labels)],
            group=None if groups is None else f"g{i % groups}",
        )
        for i in range(n)
    ]


def test_stratified_ratios() -> None:
    recs = rows(300)
    splits, conflicts = assign(recs, SplitConfig(validation=0.1, test=0.2), seed=0)
    assert not conflicts
    assert Counter(splits) == {"train": 210, "validation": 30, "test": 60}
    for s in ("train", "validation", "test"):
        labels = Counter(r.label for r, sp in zip(recs, splits, strict=True) if sp == s)
        assert labels["a"] == 2 * labels["b"]  # same label mix in every split


def test_seeded_and_reproducible() -> None:
    recs = rows(200)
    cfg = SplitConfig()
    assert assign(recs, cfg, 3)[0] == assign(recs, cfg, 3)[0]
    assert assign(recs, cfg, 3)[0] != assign(recs, cfg, 4)[0]


def test_groups_never_straddle() -> None:
    recs = rows(400, groups=37)
    splits, _ = assign(recs, SplitConfig(validation=0.15, test=0.15), seed=1)
    where: dict[str, set[str]] = {}
    for r, s in zip(recs, splits, strict=True):
        where.setdefault(r.group or "", set()).add(s)
    assert all(len(v) == 1 for v in where.values())
    counts = Counter(splits)
    assert counts["validation"] > 20 and counts["test"] > 20  # groups still fill the small splits


def test_pinned_rows_and_replaced_ratios() -> None:
    recs = rows(100)
    for r in recs[:10]:
        r.pin = "test"
    splits, _ = assign(recs, SplitConfig(validation=0.1, test=0.3), seed=0)
    assert splits[:10] == ["test"] * 10
    assert Counter(splits[10:]) == {"train": 81, "validation": 9}  # the test ratio is not used


def test_together_and_conflicting_pins() -> None:
    recs = rows(50)
    recs[0].pin, recs[1].pin = "validation", "test"
    together = [[0, 1, 2], [10, 20, 30]]
    splits, conflicts = assign(recs, SplitConfig(), seed=0, together=together)
    assert splits[0] == splits[1] == splits[2] == "test"
    assert [i for i, _ in conflicts] == [0] and "leak" in conflicts[0][1]
    assert len({splits[10], splits[20], splits[30]}) == 1
