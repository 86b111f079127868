"""The TF-IDF + linear baseline: it learns a bag-of-words task, tunes on validation, keeps row order,
and speaks each task's prediction kind; the verdict sentence follows the paired interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers import (
    classification_recipe,
    multilabel_recipe,
    regression_recipe,
    scored_rows,
    sentiment_rows,
    tagged_rows,
)

from tunelab.config import validate_recipe
from tunelab.evaluate import baseline as bl
from tunelab.evaluate.baseline import fit_baseline, has_baseline
from tunelab.evaluate.compare import BEATS, BEHIND, WITHIN_NOISE, columns, verdict
from tunelab.evaluate.stage import score
from tunelab.metrics.registry import value
from tunelab.tasks import get_task

LABELS = ["neg", "pos"]


def _recipe(build=classification_recipe, **evaluate):
    raw = build(Path("model"), Path("data.jsonl"), Path("runs"))
    raw["evaluate"].update(evaluate)
    return validate_recipe(raw)


def _splits(rows: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    n = len(rows)
    return rows[: n * 6 // 10], rows[n * 6 // 10 : n * 8 // 10], rows[n * 8 // 10 :]


def test_a_bag_of_words_task_is_learned_and_the_rows_keep_their_order():
    recipe, task = _recipe(), get_task("classification")
    train, val, test = _splits(sentiment_rows(300, seed=3))
    test = test[::-1]  # any order: the predictions follow it
    fitted = fit_baseline(task, recipe, train, val, test, LABELS)
    p = fitted.predictions
    assert p.kind == "labels" and p.labels == LABELS and p.scores.shape == (len(test), 2)
    assert p.gold.tolist() == [LABELS.index(r["label"]) for r in test]
    np.testing.assert_allclose(p.scores.sum(axis=1), 1.0)  # probabilities: ECE and Brier exist
    assert value("accuracy", p) >= 0.95
    figures = score(task, p, recipe)
    assert {"accuracy", "macro_f1", "ece", "per_class", "confusion_matrix"} <= set(figures)
    assert figures["accuracy"]["low"] <= figures["accuracy"]["value"] <= figures["accuracy"]["high"]
    info = fitted.info
    assert info["C"] in bl.C_GRID and info["vocabulary"] > 0 and info["fit_seconds"] >= 0
    assert info["selected_by"] == "accuracy on validation" and info["train_rows"] == len(train)
    assert "logistic regression" in info["model"]
    again = fit_baseline(task, recipe, train, val, test, LABELS)  # seeded: the same answer twice
    np.testing.assert_array_equal(again.predictions.scores, p.scores)


def test_the_grid_choice_is_made_on_validation(monkeypatch):
    """Validation rows whose labels are flipped make the strongest fit the worst: the choice follows
    validation (the weakest C wins), not train."""
    recipe, task = _recipe(), get_task("classification")
    rows = sentiment_rows(400, seed=5)
    train, val, test = rows[:200], rows[200:300], rows[300:]
    flipped = [dict(r, label="neg" if r["label"] == "pos" else "pos") for r in val]
    monkeypatch.setattr(bl, "C_GRID", (0.001, 100.0))
    honest = fit_baseline(task, recipe, train, val, test, LABELS).info
    inverted = fit_baseline(task, recipe, train, flipped, test, LABELS).info
    assert honest["C"] == 100.0  # a tiny C barely separates the classes
    assert inverted["C"] == 0.001  # validation says the learned direction is wrong: the weakest fit
    assert inverted["grid"]["0.001"] > inverted["grid"]["100.0"]
    assert set(inverted["grid"]) == {"0.001", "100.0"}


def test_without_validation_a_holdout_of_train_tunes_it():
    recipe, task = _recipe(), get_task("classification")
    train, _, test = _splits(sentiment_rows(200, seed=1))
    fitted = fit_baseline(task, recipe, train, [], test, LABELS)
    assert fitted.info["selected_by"] == "accuracy on a 20% hold-out of train"
    assert value("accuracy", fitted.predictions) >= 0.9


def test_regression_gives_values_from_ridge():
    recipe, task = _recipe(regression_recipe), get_task("regression")
    train, val, test = _splits(scored_rows(300, seed=2))
    fitted = fit_baseline(task, recipe, train, val, test, None)
    p = fitted.predictions
    assert p.kind == "values" and p.scores.shape == (len(test),) and p.gold.dtype == np.float64
    assert p.gold.tolist() == [r["label"] for r in test]
    assert fitted.info["alpha"] in bl.ALPHA_GRID and "ridge" in fitted.info["model"]
    assert fitted.info["selected_by"] == "rmse on validation"
    assert value("r2", p) > 0.6  # a word decides the sign: far above 0, the r2 of a constant
    assert {"mae", "rmse", "r2", "target", "prediction"} <= set(score(task, p, recipe))


def test_multilabel_gives_per_label_probabilities_at_a_validation_threshold():
    from tunelab.tasks.multilabel import THRESHOLD_GRID

    recipe, task = _recipe(multilabel_recipe), get_task("multilabel")
    labels = ["downbeat", "question", "upbeat"]
    train, val, test = _splits(tagged_rows(300, seed=4))
    fitted = fit_baseline(task, recipe, train, val, test, labels)
    p = fitted.predictions
    assert p.kind == "multilabel" and p.scores.shape == p.gold.shape == (len(test), 3)
    assert p.gold.tolist() == [[int(x in r["label"]) for x in labels] for r in test]
    assert fitted.info["threshold"] == p.threshold and p.threshold in THRESHOLD_GRID
    assert fitted.info["selected_by"] == "micro_f1 on validation"
    assert value("micro_f1", p) >= 0.9
    assert {"micro_f1", "subset_accuracy", "per_label", "threshold"} <= set(score(task, p, recipe))


def test_a_single_class_train_split_cannot_fit_one():
    recipe, task = _recipe(), get_task("classification")
    rows = [r for r in sentiment_rows(80) if r["label"] == "pos"]
    with pytest.raises(ValueError):
        fit_baseline(task, recipe, rows[:30], rows[30:40], rows[40:], LABELS)


def test_only_the_three_supervised_tasks_have_one():
    names = ("classification", "multilabel", "regression", "sft", "lm")
    assert [t for t in names if has_baseline(get_task(t))] == [
        "classification",
        "multilabel",
        "regression",
    ]


def _diff(a: float, b: float, low: float | None, high: float | None) -> dict:
    return {"value": b - a, "low": low, "high": high, "a": a, "b": b}


@pytest.mark.parametrize(
    "name, diff, outcome, words",
    [
        ("accuracy", _diff(0.77, 0.83, 0.04, 0.08), BEATS, "fine-tuning beats the TF-IDF baseline"),
        ("accuracy", _diff(0.77, 0.79, -0.01, 0.05), WITHIN_NOISE, "but within noise (CI crosses 0)"),
        ("accuracy", _diff(0.80, 0.74, -0.09, -0.03), BEHIND, "does NOT beat the TF-IDF baseline"),
        ("rmse", _diff(0.60, 0.50, -0.15, -0.05), BEATS, "fine-tuning beats"),  # lower is better
        ("rmse", _diff(0.50, 0.60, 0.05, 0.15), BEHIND, "does NOT beat"),
        ("accuracy", _diff(0.70, 0.75, None, None), BEATS, "no interval"),
    ],
)
def test_the_verdict_follows_the_interval_and_the_direction(name, diff, outcome, words):
    v = verdict(name, diff, 0.95)
    assert v["outcome"] == outcome and v["beats_baseline"] == (outcome == BEATS) and words in v["sentence"]
    assert f"{name} {diff['b']:.3f} vs {diff['a']:.3f} ({diff['value']:+.3f}" in v["sentence"]
    if diff["low"] is not None:
        assert f"95% CI {diff['low']:+.3f}..{diff['high']:+.3f}" in v["sentence"]
    assert ("lower is better" in v["sentence"]) == (name == "rmse")


def test_columns_put_base_baseline_and_tuned_side_by_side():
    fig = lambda x: {"value": x, "low": x - 0.1, "high": x + 0.1}  # noqa: E731
    rows = columns(["accuracy", "ece"], {"accuracy": fig(0.8), "ece": 0.1}, {"accuracy": fig(0.5)},
                   {"accuracy": fig(0.9), "ece": 0.05})
    acc = rows["accuracy"]
    assert acc["improved"] and not acc["beats_baseline"] and acc["delta_vs_baseline"] == pytest.approx(-0.1)
    assert rows["ece"] == {"baseline": 0.05, "tuned": 0.1, "delta_vs_baseline": pytest.approx(0.05),
                           "beats_baseline": False, "higher_is_better": False}
    without_base = columns(["accuracy"], {"accuracy": fig(0.8)}, None, {"accuracy": fig(0.7)})
    assert "base" not in without_base["accuracy"]
