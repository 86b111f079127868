"""Metrics by name with one source for their direction; a user's metric by dotted path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers import classification_recipe

from tunelab.config import validate_recipe
from tunelab.metrics.registry import (
    Predictions,
    get_metric,
    higher_is_better,
    interval,
    paired_difference,
    value,
)
from tunelab.pipeline import run_pipeline

USER = "tests.plugins.my_metrics:false_negative_cost"


def _labels(pred: list[int], gold: list[int]) -> Predictions:
    probs = np.eye(2)[pred] * 0.8 + 0.1
    return Predictions("labels", np.asarray(gold), probs, labels=["neg", "pos"])


def test_directions_come_from_one_place():
    assert higher_is_better("accuracy") and higher_is_better("r2") and higher_is_better("micro_f1")
    assert (
        not higher_is_better("loss") and not higher_is_better("perplexity") and not higher_is_better("rmse")
    )
    assert not higher_is_better(USER)  # the function's own attribute
    with pytest.raises(KeyError, match=r"unknown metric .acuracy.; known: .*accuracy"):
        get_metric("acuracy")


def test_values_intervals_and_kinds():
    p = _labels([1, 1, 0, 0], [1, 0, 0, 0])
    assert value("accuracy", p) == 0.75
    assert value(USER, p) == pytest.approx(1 / 4)  # one false alarm
    ci = interval("accuracy", p, bootstrap_samples=200, confidence=0.9, seed=0)
    assert ci["low"] <= 0.75 <= ci["high"] and ci["bootstrap_samples"] == 200
    with pytest.raises(ValueError, match="'rmse' scores values predictions, not labels"):
        value("rmse", p)
    tokens = Predictions("tokens", np.array([2.0, 2.0]), np.array([2.0, 2.0]))
    assert value("perplexity", tokens) == pytest.approx(np.e)


def test_paired_difference_is_tuned_minus_base_on_the_same_rows():
    base, tuned = _labels([0, 0, 0, 0], [1, 0, 1, 0]), _labels([1, 0, 1, 0], [1, 0, 1, 0])
    diff = paired_difference("accuracy", base, tuned, bootstrap_samples=100, confidence=0.95, seed=1)
    assert diff["value"] == pytest.approx(0.5) and diff["a"] == 0.5 and diff["b"] == 1.0
    assert diff["higher_is_better"] is True and diff["low"] >= 0.0


def test_a_user_metric_picks_the_best_checkpoint_and_headlines_evaluation(
    tiny_bert, classification_files, tmp_path
):
    raw = classification_recipe(
        tiny_bert, classification_files["train"], tmp_path, epochs=2, metric_for_best=USER
    )
    raw["evaluate"]["metrics"] = [USER]
    run_pipeline(validate_recipe(raw))
    run = tmp_path / "cls"
    summary = json.loads((run / "metrics/train_summary.json").read_text())
    assert USER in summary["best_metric"]
    log = [json.loads(x) for x in (run / "metrics/train_log.jsonl").read_text().splitlines()]
    scores = {e["step"]: e["validation"][USER] for e in log if "validation" in e}
    assert summary["best_metric"]["step"] == min(scores, key=lambda s: (scores[s], s))  # lower is better
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert {"value", "low", "high"} <= set(ev[USER])
    comparison = json.loads((run / "metrics/comparison.json").read_text())
    assert comparison["metrics"][USER]["higher_is_better"] is False
    assert USER in comparison["paired_difference"]
