"""Global importance over a split: for each predicted class, the words that push toward it most.

Aggregates word-level attributions of many explained examples. Words are lowercased and stripped of
surrounding punctuation ("Great", "great!" and "great" are one word); pure-punctuation tokens and
non-finite scores are skipped.
"""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict
from typing import Any

RANKING = "mean * log1p(count)"
"""How words are ranked within a label (see :func:`rank_score`)."""


def rank_score(mean: float, count: int) -> float:
    """The ranking score of a word: its mean attribution times ``log1p`` of its occurrences."""
    return mean * math.log1p(count)


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def normalize_word(word: str) -> str:
    """Lowercase, strip whitespace and surrounding punctuation; ``""`` for a pure-punctuation token."""
    w = word.strip().lower()
    start, end = 0, len(w)
    while start < end and (_is_punct(w[start]) or w[start].isspace()):
        start += 1
    while end > start and (_is_punct(w[end - 1]) or w[end - 1].isspace()):
        end -= 1
    return w[start:end]


def _label_table(rows: list[tuple[list[str], list[float]]], top_k: int, min_count: int) -> dict[str, Any]:
    total: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    n_ex: dict[str, int] = defaultdict(int)
    for words, scores in rows:
        seen: set[str] = set()
        for raw, score in zip(words, scores, strict=True):
            w = normalize_word(str(raw))
            if not w or not math.isfinite(score := float(score)):  # punctuation, or a NaN/inf score
                continue
            total[w] += score
            count[w] += 1
            seen.add(w)
        for w in seen:
            n_ex[w] += 1
    top = []
    for w, c in count.items():
        if c < min_count:
            continue
        mean = total[w] / c
        top.append(
            {
                "word": w,
                "mean": mean,
                "count": c,
                "examples": n_ex[w],
                "share": n_ex[w] / len(rows),
                "score": rank_score(mean, c),
            }
        )
    top.sort(key=lambda e: (-e["score"], e["word"]))
    return {"n_examples": len(rows), "top": top[:top_k]}


def global_importance(
    examples: list[dict[str, Any]],
    labels: list[str],
    *,
    method: str,
    top_k: int = 15,
    min_count: int = 2,
) -> dict[str, Any]:
    """Per predicted label, the top words by ``mean * log1p(count)`` of their attributions.

    ``examples``: ``{"predicted": label, "words": [...], "scores": [...]}`` each, scores being word-level
    attributions toward the predicted class. For each label, over the examples predicted as it, every word
    gets ``mean`` (mean attribution over its occurrences), ``count`` (occurrences), ``examples`` (examples
    containing it), ``share`` (examples / examples predicted that label) and ``score`` (the ranking value);
    words with ``count < min_count`` are dropped. Returns
    ``{"labels": {label: {"n_examples", "top": [...]}}, "method", "min_count", "top_k", "ranking"}``.
    Raises ValueError on a predicted label not in ``labels``, words/scores of different lengths, or
    invalid settings.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    by_label: dict[str, list[tuple[list[str], list[float]]]] = {str(lab): [] for lab in labels}
    for i, ex in enumerate(examples):
        pred, words, scores = str(ex["predicted"]), list(ex["words"]), list(ex["scores"])
        if pred not in by_label:
            raise ValueError(f"example {i} is predicted {pred!r}, which is not one of the labels {labels}")
        if len(words) != len(scores):
            raise ValueError(f"example {i} has {len(words)} words but {len(scores)} scores")
        by_label[pred].append((words, scores))
    return {
        "labels": {
            lab: _label_table(rows, top_k, min_count) if rows else {"n_examples": 0, "top": []}
            for lab, rows in by_label.items()
        },
        "method": method,
        "min_count": min_count,
        "top_k": top_k,
        "ranking": RANKING,
    }
