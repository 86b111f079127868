"""Global importance: per-label top words, word merging, min_count, empty labels."""

from __future__ import annotations

import json
import math
import random

import pytest

from tunelab.explain.global_view import global_importance, normalize_word, rank_score

LABELS = ["fresh", "rotten"]


def _examples(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    filler = ["the", "movie", "plot", "was", "and", "acting"]
    out = []
    for i in range(40):
        pred = LABELS[i % 2]
        key = ["Great", "great!", "GREAT", "great"][i % 4] if pred == "fresh" else "awful"
        words = [*rng.sample(filler, 4), key, "."]
        scores = [rng.uniform(-0.1, 0.1) for _ in range(4)] + [rng.uniform(0.8, 1.0), 5.0]
        out.append({"predicted": pred, "words": words, "scores": scores})
    return out


def test_top_word_per_label() -> None:
    res = global_importance(_examples(), LABELS, method="integrated_gradients")
    assert res["method"] == "integrated_gradients" and res["min_count"] == 2
    json.dumps(res)
    fresh, rotten = res["labels"]["fresh"], res["labels"]["rotten"]
    assert fresh["n_examples"] == rotten["n_examples"] == 20
    assert fresh["top"][0]["word"] == "great"
    assert rotten["top"][0]["word"] == "awful"
    top = fresh["top"][0]
    assert set(top) == {"word", "mean", "count", "examples", "share", "score"}
    assert top["count"] == 20 and top["examples"] == 20 and top["share"] == 1.0  # "Great"/"great!" merged
    assert 0.8 <= top["mean"] <= 1.0
    assert top["score"] == pytest.approx(top["mean"] * math.log1p(20))
    scores = [e["score"] for e in fresh["top"]]
    assert scores == sorted(scores, reverse=True)


def test_punctuation_only_tokens_skipped() -> None:
    res = global_importance(_examples(), LABELS, method="m")
    words = {e["word"] for lab in res["labels"].values() for e in lab["top"]}
    assert "." not in words and "" not in words


def test_case_and_punctuation_merge_counts() -> None:
    ex = [
        {
            "predicted": "fresh",
            "words": ["Great", "great!", "(great)", "..."],
            "scores": [1.0, 2.0, 3.0, 9.0],
        },
        {"predicted": "fresh", "words": ["great", "ok"], "scores": [2.0, 0.5]},
    ]
    top = global_importance(ex, LABELS, method="m", min_count=1)["labels"]["fresh"]["top"]
    great = next(e for e in top if e["word"] == "great")
    assert (great["count"], great["examples"], great["share"]) == (4, 2, 1.0)
    assert great["mean"] == pytest.approx(2.0)
    assert [e["word"] for e in top] == ["great", "ok"]


def test_min_count_and_top_k() -> None:
    ex = [{"predicted": "fresh", "words": ["a", "b", "b", "c", "c", "c"], "scores": [9, 1, 1, 1, 1, 1]}]
    res = global_importance(ex, LABELS, method="m", min_count=2)
    assert [e["word"] for e in res["labels"]["fresh"]["top"]] == ["c", "b"]
    res = global_importance(ex, LABELS, method="m", min_count=3)
    assert [e["word"] for e in res["labels"]["fresh"]["top"]] == ["c"]
    res = global_importance(ex, LABELS, method="m", min_count=1, top_k=1)
    assert [e["word"] for e in res["labels"]["fresh"]["top"]] == ["a"]


def test_empty_label_and_no_examples() -> None:
    ex = [{"predicted": "fresh", "words": ["good", "good"], "scores": [1.0, 1.0]}]
    res = global_importance(ex, LABELS, method="m")
    assert res["labels"]["rotten"] == {"n_examples": 0, "top": []}
    empty = global_importance([], LABELS, method="m")
    assert empty["labels"] == {lab: {"n_examples": 0, "top": []} for lab in LABELS}


def test_non_finite_scores_skipped() -> None:
    ex = [{"predicted": "fresh", "words": ["good", "good", "good"], "scores": [1.0, float("nan"), 3.0]}]
    top = global_importance(ex, LABELS, method="m")["labels"]["fresh"]["top"]
    assert top[0]["count"] == 2 and top[0]["mean"] == pytest.approx(2.0)


def test_helpers() -> None:
    assert normalize_word(' "Great!" ') == "great"
    assert normalize_word("?!...") == ""
    assert normalize_word("don't") == "don't"
    assert rank_score(2.0, 3) == pytest.approx(2.0 * math.log1p(3))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="words but"):
        global_importance([{"predicted": "fresh", "words": ["a"], "scores": []}], LABELS, method="m")
    with pytest.raises(ValueError, match="not one of the labels"):
        global_importance([{"predicted": "meh", "words": [], "scores": []}], LABELS, method="m")
    with pytest.raises(ValueError, match="min_count"):
        global_importance([], LABELS, method="m", min_count=0)
