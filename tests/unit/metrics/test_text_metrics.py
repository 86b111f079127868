"""ROUGE-L via rouge_score, with a bootstrap interval on the mean."""

from __future__ import annotations

import pytest

from tunelab.metrics.text import rouge_l, rouge_l_scores


def test_identical_and_disjoint() -> None:
    assert rouge_l_scores(["the cat sat"], ["the cat sat"]) == [1.0]
    assert rouge_l_scores(["apple banana"], ["cherry grape"]) == [0.0]


def test_hand_computed_lcs() -> None:
    # LCS(a b c d e, a x c y e z) = a c e: P = 3/5, R = 3/6, F = 2PR/(P+R).
    p, r = 3 / 5, 3 / 6
    assert rouge_l_scores(["a b c d e"], ["a x c y e z"]) == [pytest.approx(2 * p * r / (p + r))]


def test_mean_with_interval() -> None:
    preds = ["the cat sat", "apple banana", "a b c d e", "hello world"]
    refs = ["the cat sat", "cherry grape", "a x c y e z", "hello there world"]
    out = rouge_l(preds, refs, bootstrap_samples=200, seed=0)
    assert out["n"] == 4 and len(out["per_example"]) == 4
    interval = out["rouge_l"]
    assert interval["value"] == pytest.approx(sum(out["per_example"]) / 4)
    assert 0.0 <= interval["low"] <= interval["value"] <= interval["high"] <= 1.0
    assert rouge_l(preds, refs, bootstrap_samples=200, seed=0) == out


def test_rejects_mismatched_or_empty() -> None:
    with pytest.raises(ValueError):
        rouge_l(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        rouge_l([], [])
