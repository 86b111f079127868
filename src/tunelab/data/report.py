"""Figures for data/data_report.json: per-step counts, label balance, lengths, duplicates, PII, diversity."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from tunelab.data.records import Record

_TOKEN = re.compile(r"\w+|[^\w\s]")


def label_distribution(rows: Sequence[Record]) -> dict[str, int]:
    return dict(sorted(Counter(r.label for r in rows if r.label is not None).items()))


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
        out["label"] = rec.label
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
