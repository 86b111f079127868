"""Figures for data/data_report.json: per-step counts, label balance, lengths, duplicates, PII, diversity."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from tunelab.config.data import SPLITS, DataConfig
from tunelab.data.dedup import DupReport
from tunelab.data.quarantine import Quarantine
from tunelab.data.records import Record, is_number, label_parts

_TOKEN = re.compile(r"\w+|[^\w\s]")


def label_distribution(rows: Sequence[Record]) -> dict[str, int]:
    """Rows per label name; a label set counts once for each of its members, a number not at all."""
    return dict(sorted(Counter(p for r in rows for p in label_parts(r.label)).items()))


def label_values(rows: Sequence[Record]) -> dict[str, float] | None:
    """Numeric labels (regression targets) have no distribution of names: their count and range."""
    values = np.asarray([r.label for r in rows if is_number(r.label)], dtype=np.float64)
    if not values.size:
        return None
    return {
        "count": int(values.size),
        "min": float(values.min()),
        "mean": round(float(values.mean()), 6),
        "max": float(values.max()),
    }


def imbalance_warnings(splits: dict[str, list[Record]], ratio: float) -> list[str]:
    out = []
    for name, rows in splits.items():
        dist = label_distribution(rows)
        if len(dist) >= 2:
            hi, lo = max(dist.values()), min(dist.values())
            if hi > ratio * lo:
                big = max(dist, key=dist.__getitem__)
                small = min(dist, key=dist.__getitem__)
                out.append(
                    f"{name}: labels are imbalanced ({big!r} {hi} vs {small!r} {lo}, more than "
                    f"{ratio:g}x); consider class weights or resampling"
                )
    return out


# A validation or test split with fewer rows than this gives metrics too noisy to compare runs by.
TINY_SPLIT = 20


def split_warnings(splits: dict[str, list[Record]], task: str) -> list[str]:
    """Evaluation splits that cannot say much: tiny, one label only, labels train never shows."""
    out = []
    train = {p for r in splits.get("train", []) for p in label_parts(r.label)}
    for name, rows in splits.items():
        if name != "train" and 0 < len(rows) < TINY_SPLIT:
            out.append(
                f"{name} has only {len(rows)} row(s): its metrics will be noisy; give it a larger "
                f"share (data.split.{name}) or more rows"
            )
        if task != "labelled" or not rows:
            continue
        dist = label_distribution(rows)
        if len(dist) == 1 and len(rows) > 1:
            out.append(f"{name}: every row has the label {next(iter(dist))!r}")
        if name != "train":
            unseen = sorted(set(dist) - train)
            if unseen:
                out.append(f"{name}: label(s) {unseen} never appear in train, so the model cannot learn them")
    return out


def histogram(values: Sequence[int], bins: int = 20) -> dict[str, Any]:
    """Summary and a fixed-width histogram of lengths."""
    if not values:
        return {"count": 0}
    arr = np.asarray(values)
    top = int(np.percentile(arr, 99)) + 1  # one outlier must not squash every bar into the first bin
    counts, edges = np.histogram(np.minimum(arr, top), bins=min(bins, max(1, top)), range=(0, top))
    return {
        "count": len(values),
        "mean": round(float(arr.mean()), 2),
        "p50": int(np.percentile(arr, 50)),
        "p95": int(np.percentile(arr, 95)),
        "max": int(arr.max()),
        "edges": [round(float(e), 1) for e in edges],
        "counts": counts.tolist(),
        "clipped_at": top,
    }


def diversity(rows: Sequence[Record]) -> dict[str, Any]:
    """Vocabulary size and distinct-n: distinct n-grams over all n-grams (lower-cased word tokens)."""
    uni: Counter[str] = Counter()
    bi: set[tuple[str, str]] = set()
    total_bi = 0
    for r in rows:
        toks = _TOKEN.findall(r.content().lower())
        uni.update(toks)
        pairs = list(pairwise(toks))
        bi.update(pairs)
        total_bi += len(pairs)
    total = sum(uni.values())
    return {
        "vocab_size": len(uni),
        "tokens": total,
        "distinct_1": round(len(uni) / total, 4) if total else 0.0,
        "distinct_2": round(len(bi) / total_bi, 4) if total_bi else 0.0,
        "top_words": uni.most_common(15),
    }


def length_stats(splits: dict[str, list[Record]], counter: Callable[[str], int], unit: str) -> dict[str, Any]:
    return {
        "unit": unit,
        **{name: histogram([counter(r.content()) for r in rows]) for name, rows in splits.items()},
    }


def word_count(text: str) -> int:
    return len(text.split())


def example_row(rec: Record, split: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"source": rec.source}
    if split:
        out["split"] = split
    if rec.messages is not None:
        out["messages"] = [{"role": m["role"], "content": m["content"][:300]} for m in rec.messages]
    else:
        out["text"] = rec.text[:300]
    if rec.label is not None:
        out["label"] = list(rec.label) if isinstance(rec.label, tuple) else rec.label
    return out


def removed_examples(quarantine_rows: list[dict[str, Any]], per_step: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for q in quarantine_rows:
        bucket = out.setdefault(q["step"], [])
        if len(bucket) < per_step:
            row = q["row"]
            shown = (
                {k: (v[:300] + "..." if isinstance(v, str) and len(v) > 300 else v) for k, v in row.items()}
                if isinstance(row, dict)
                else row
            )
            bucket.append({"source": q["source"], "reason": q["reason"], "row": shown})
    return out


def top_reasons(quarantine_rows: list[dict[str, Any]], n: int = 5) -> dict[str, list[tuple[str, int]]]:
    """The most common reasons per step, with numbers stripped so similar reasons group together."""
    per: dict[str, Counter[str]] = {}
    for q in quarantine_rows:
        key = re.sub(r"\d[\d,.]*", "N", q["reason"])
        key = re.sub(r"of \S+:N", "of <row>", key)
        per.setdefault(q["step"], Counter())[key] += 1
    return {step: c.most_common(n) for step, c in per.items()}


@dataclass
class Outcome:
    """What the stage found on the way, for the report."""

    task: str
    read: int
    quarantine: Quarantine
    by_split: dict[str, list[Record]]
    copies: int = 0  # extra train rows made by source weights above 1
    steps: list[tuple[str, int]] = field(default_factory=list)  # (step, rows remaining after it)
    sources: list[dict[str, Any]] = field(default_factory=list)
    dups: DupReport = field(default_factory=DupReport)
    conflict_groups: int = 0
    leak: dict[str, Any] = field(default_factory=lambda: {"pairs": 0, "checked_rows": 0, "examples": []})
    stats: dict[str, Any] = field(default_factory=dict)  # from the cleaning steps (pii, html)
    warnings: list[str] = field(default_factory=list)  # found by the stage on the way (skipped files ...)
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)  # reason -> count, example files
    hidden: int = 0  # hidden files and folders of text folders, ignored
    columns: dict[int, dict[str, str]] = field(default_factory=dict)  # per source: field -> column


def step_table(o: Outcome) -> list[dict[str, Any]]:
    out = []
    before = o.read
    for name, remaining in o.steps:
        out.append(
            {"step": name, "in": before, "removed": o.quarantine.counts.get(name, 0), "out": remaining}
        )
        before = remaining
    return out


def build(
    o: Outcome,
    cfg: DataConfig,
    seed: int,
    unit: str,
    counter: Callable[[str], int],
    long_texts: tuple[dict[str, Any], list[str]] | None = None,
) -> dict[str, Any]:
    """The whole data_report.json. ``long_texts``: the block of texts longer than model.max_length
    and its warnings (see :mod:`tunelab.data.long_texts`), for tasks that read text rows."""
    by_split, q, n_ex = o.by_split, o.quarantine, cfg.report.examples
    kept = sum(len(v) for v in by_split.values()) - o.copies
    labels = sorted({p for r in by_split["train"] for p in label_parts(r.label)})
    long_block, long_warnings = long_texts or (None, [])
    warnings = [*long_warnings, *o.warnings]  # a cut text silently changes what is learned: first
    warnings += imbalance_warnings(by_split, cfg.report.imbalance_ratio)
    warnings += [f"{s} is empty" for s in SPLITS if not by_split[s]]
    warnings += split_warnings(by_split, o.task)
    if len(q):
        steps = ", ".join(f"{step}: {n}" for step, n in q.counts.most_common())
        warnings.append(f"{len(q)} row(s) removed ({steps}); each is in quarantine.jsonl with its reason")
    if o.leak["pairs"]:
        warnings.append(f"{o.leak['pairs']} near-duplicate pair(s) straddle splits")
    pii = o.stats.get("pii")
    d = o.dups
    near = cfg.dedup.near
    return {
        "summary": {
            "rows_read": o.read,
            "rows_kept": kept,
            "rows_quarantined": len(q),
            "reconciles": o.read == kept + len(q),
            "upsampled_copies": o.copies,
            **{f"{s}_rows": len(by_split[s]) for s in SPLITS},
            "exact_duplicates": d.exact_removed,
            "near_duplicates": d.near_removed,
            "leakage_pairs": o.leak["pairs"],
            "labels": labels if o.task == "labelled" and labels else None,  # None for numbers
            "train_over_max_length": ((long_block or {}).get("splits") or {}).get("train", {}).get("share"),
        },
        "task": o.task,
        "sources": o.sources,
        "steps": step_table(o),
        "removed_by_step": dict(q.counts),
        "top_reasons": top_reasons(q.rows),
        "splits": {
            s: {
                "rows": len(by_split[s]),
                "labels": label_distribution(by_split[s]),
                **({"label_values": v} if (v := label_values(by_split[s])) else {}),
                "groups": len({r.group for r in by_split[s] if r.group is not None}),
            }
            for s in SPLITS
        },
        "warnings": warnings,
        "skipped": {
            "files": sum(x["count"] for x in o.skipped.values()),
            "by_reason": o.skipped,
            "hidden_ignored": o.hidden,
        },
        "lengths": length_stats(by_split, counter, unit),
        "long_texts": long_block,
        "duplicates": {
            "exact": {"removed": d.exact_removed, "examples": d.examples},
            "near": {
                "enabled": near.enabled,
                "threshold": near.threshold,
                "action": near.action,
                "pairs": d.near_pairs,
                "clusters": d.near_clusters,
                "removed": d.near_removed,
                "examples": d.near_examples,
            },
            "conflicting_label_groups": o.conflict_groups,
            "leakage": o.leak,
        },
        "pii": {
            "enabled": pii is not None,
            "counts": dict(pii.counts) if pii else {},
            "rows": o.stats.get("pii_rows", {}).get("n", 0),
            "examples": pii.examples if pii else [],
        },
        "html_rows": o.stats.get("html_rows", 0),
        "diversity": {s: diversity(by_split[s]) for s in SPLITS},
        "examples": {
            "kept": [example_row(r, s) for s in SPLITS for r in _sample(by_split[s], n_ex, seed)],
            "removed": removed_examples(q.rows, n_ex),
        },
    }


def _sample(rows: list[Record], n: int, seed: int) -> list[Record]:
    return rows if len(rows) <= n else random.Random(seed).sample(rows, n)
