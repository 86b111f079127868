"""Text-generation metrics: ROUGE-L (via the ``rouge_score`` package) with a bootstrap interval."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rouge_score import rouge_scorer

from tunelab.metrics.bootstrap import bootstrap_mean


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_scores(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Per-example ROUGE-L F-measure (LCS-based; lower-cased, Porter-stemmed tokens)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = _scorer()
    # rouge_score's signature is score(target, prediction).
    return [
        float(scorer.score(ref, pred)["rougeL"].fmeasure)
        for pred, ref in zip(predictions, references, strict=True)
    ]


def rouge_l(
    predictions: Sequence[str],
    references: Sequence[str],
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"rouge_l": Interval of the mean F-measure, "per_example": [float, ...], "n": int}``."""
    scores = rouge_l_scores(predictions, references)
    if not scores:
        raise ValueError("no predictions to score")
    interval = bootstrap_mean(scores, bootstrap_samples=bootstrap_samples, confidence=confidence, seed=seed)
    return {"rouge_l": interval, "per_example": scores, "n": len(scores)}
