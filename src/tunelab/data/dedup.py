"""Conflicting labels, exact duplicates and near-duplicate clusters, and the split leakage check.

Near-duplicates are found with MinHash LSH and grouped into clusters with union-find. With
``action: drop`` (the default) each cluster is reduced to one representative, so no two near-copies
survive at all; with ``keep_together`` every member is kept and the split puts the whole cluster in
one split. Either way no near-duplicate pair can straddle two splits, and :func:`leakage` checks it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunelab.config.data import DataConfig
from tunelab.data.minhash import LshIndex, UnionFind, sketch
from tunelab.data.records import SPLIT_PRIORITY, Record, dedup_key, normalise_key, show_label

Reject = Callable[[str, str, str, Any], None]


def _preferred(rec: Record, index: int) -> tuple[int, int]:
    # The copy to keep: one pinned to an evaluation split first (explicit test files stay whole),
    # then the first one read.
    return (-SPLIT_PRIORITY.get(rec.pin or "", 0), index)


def resolve_conflicts(records: list[Record], mode: str, reject: Reject) -> tuple[list[Record], int]:
    """Same normalised text with different labels: drop all, keep the majority label, or keep all.

    Labels compare whole: a label set differs from another set, a number from another number.
    """
    if mode == "keep":
        return records, 0
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        if rec.label is not None:
            by_text[normalise_key(rec.text)].append(i)
    drop: dict[int, str] = {}
    groups = 0
    for idx in by_text.values():
        labels = Counter(records[i].label for i in idx)
        if len(labels) < 2:
            continue
        groups += 1
        desc = ", ".join(f"{show_label(lab)} ({n})" for lab, n in sorted(labels.items()))
        ranked = labels.most_common()
        winner = ranked[0][0] if mode == "majority" and ranked[0][1] > ranked[1][1] else None
        for i in idx:
            if records[i].label != winner:
                keep_note = f"; kept label {show_label(winner)!r}" if winner is not None else ""
                drop[i] = f"the same text appears with labels {desc}{keep_note}"
    for i, why in drop.items():
        reject("conflicts", why, records[i].source, records[i].raw)
    return [r for i, r in enumerate(records) if i not in drop], groups


@dataclass
class DupReport:
    exact_removed: int = 0
    near_removed: int = 0
    near_clusters: int = 0
    near_pairs: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    near_examples: list[dict[str, Any]] = field(default_factory=list)


def exact_dedup(records: list[Record], reject: Reject, report: DupReport, max_examples: int) -> list[Record]:
    """Keep one row per normalised content (and label)."""
    first: dict[tuple[str, Any], int] = {}
    for i, rec in enumerate(records):
        key = (dedup_key(rec), rec.label)
        j = first.get(key)
        if j is None or _preferred(rec, i) < _preferred(records[j], j):
            first[key] = i
    keep = set(first.values())
    for i, rec in enumerate(records):
        if i in keep:
            continue
        orig = records[first[(dedup_key(rec), rec.label)]]
        reject("exact_dedup", f"exact duplicate of {orig.source}", rec.source, rec.raw)
        report.exact_removed += 1
        if len(report.examples) < max_examples:
            report.examples.append({"kept": orig.source, "removed": rec.source, "text": rec.content()[:300]})
    return [r for i, r in enumerate(records) if i in keep]


@dataclass
class NearDup:
    """The LSH index over the rows that survived exact dedup, and its clusters."""

    records: list[Record]
    index: LshIndex
    clusters: list[list[int]]


def build_index(records: list[Record], cfg: DataConfig, seed: int = 1) -> LshIndex:
    near = cfg.dedup.near
    sk = sketch([r.content() for r in records], near.num_perm, near.ngram, near.unit, seed=seed)
    return LshIndex(sk, near.threshold)


def near_dedup(
    records: list[Record], cfg: DataConfig, reject: Reject, report: DupReport, max_examples: int
) -> tuple[list[Record], NearDup]:
    """Cluster near-duplicates. ``drop`` keeps one per cluster; ``keep_together`` keeps all of them."""
    index = build_index(records, cfg)
    pairs = index.pairs()
    uf = UnionFind(len(records))
    for i, j, _ in pairs:
        uf.union(i, j)
    clusters = [
        sorted(m, key=lambda k: _preferred(records[k], k)) for m in uf.groups().values() if len(m) > 1
    ]
    report.near_pairs = len(pairs)
    report.near_clusters = len(clusters)
    best = {(i, j): s for i, j, s in pairs}
    for members in clusters[:max_examples]:
        rep = members[0]
        report.near_examples.append(
            {
                "kept": records[rep].source,
                "text": records[rep].content()[:300],
                "others": [
                    {"source": records[k].source, "text": records[k].content()[:300]} for k in members[1:4]
                ],
                "size": len(members),
            }
        )
    if cfg.dedup.near.action == "keep_together":
        return records, NearDup(records, index, clusters)
    drop: set[int] = set()
    for members in clusters:
        rep = members[0]
        for k in members[1:]:
            sim = best.get((min(rep, k), max(rep, k)))
            how = f"Jaccard {sim:.2f}" if sim is not None else "same cluster"
            reject(
                "near_dedup",
                f"near-duplicate of {records[rep].source} ({how})",
                records[k].source,
                records[k].raw,
            )
            drop.add(k)
    report.near_removed = len(drop)
    kept_idx = [i for i in range(len(records)) if i not in drop]
    return [records[i] for i in kept_idx], NearDup(records, index, clusters)


def leakage(
    index: LshIndex, records: list[Record], split_of: list[str | None], max_examples: int = 5
) -> dict[str, Any]:
    """Near-duplicate pairs among kept rows whose members sit in different splits.

    ``records`` and ``split_of`` are aligned with the index rows; ``None`` marks a row that was
    removed, so the dedup index is reused as is.
    """
    code = {"train": 0, "validation": 1, "test": 2}
    splits = np.array([code.get(s, -1) if s else -1 for s in split_of], dtype=np.int64)
    li, ri = index.candidate_pairs(np.flatnonzero(splits >= 0))
    cross = splits[li] != splits[ri]
    li, ri = li[cross], ri[cross]
    sim = index.similarity(li, ri)
    hit = sim >= index.threshold
    found = list(zip(li[hit].tolist(), ri[hit].tolist(), sim[hit].tolist(), strict=True))
    return {
        "pairs": len(found),
        "checked_rows": sum(1 for s in split_of if s not in (None, "train")),
        "threshold": index.threshold,
        "examples": [
            {
                "a": records[i].source,
                "a_split": split_of[i],
                "b": records[j].source,
                "b_split": split_of[j],
                "jaccard": round(s, 3),
                "text": records[i].content()[:200],
            }
            for i, j, s in found[:max_examples]
        ],
    }
