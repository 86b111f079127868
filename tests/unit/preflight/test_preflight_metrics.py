"""Metric preflight: every metric named is one the task's validation (or evaluation) produces."""

from __future__ import annotations

import pytest
from tests.helpers import qa_rows, sentiment_rows, write_jsonl
from tests.unit.preflight.conftest import keys

from tunelab.preflight import prediction_kind
from tunelab.preflight.metrics import validation_metrics
from tunelab.tasks import get_task


@pytest.fixture
def files(tmp_path) -> dict:
    reviews = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(20))
    numbers = write_jsonl(tmp_path / "numbers.jsonl", [{"text": f"t {i}", "label": i / 2} for i in range(20)])
    qa = write_jsonl(tmp_path / "qa.jsonl", qa_rows(20))
    return {"classification": reviews, "regression": numbers, "sft": qa, "lm": reviews}


def _recipe(files, task, model="minilm", **sections) -> dict:
    return {
        "task": task,
        "data": {"sources": [{"path": str(files[task])}]},
        "model": {"name": model},
        **sections,
    }


def test_each_tasks_validation_figures():
    assert validation_metrics(get_task("classification"), "labels")[:3] == ["loss", "accuracy", "macro_f1"]
    assert "rmse" in validation_metrics(get_task("regression"), "values")
    assert validation_metrics(get_task("sft"), "tokens") == ["loss", "perplexity"]
    assert "rouge_l" not in validation_metrics(get_task("sft"), "tokens")


def test_good_metrics_pass(files, preflight):
    good = {
        "train": {
            "metric_for_best": "macro_f1",
            "strategies": [{"name": "early_stopping", "metric": "loss"}],
        },
        "search": {"metric": "accuracy"},
        "evaluate": {"metrics": ["brier", "log_loss"]},
    }
    assert preflight(_recipe(files, "classification", **good)) == ([], [])
    assert preflight(_recipe(files, "regression", train={"metric_for_best": "r2"})) == ([], [])
    sft = {"train": {"metric_for_best": "perplexity"}, "evaluate": {"metrics": ["rouge_l"]}}
    assert preflight(_recipe(files, "sft", "smollm2", **sft)) == ([], [])
    # a user's metric by dotted path: it must import (the task's own scoring is checked when it runs)
    mine = {"train": {"metric_for_best": "tunelab.metrics.builtin:accuracy"}}
    assert preflight(_recipe(files, "classification", **mine)) == ([], [])


def test_metrics_the_task_does_not_produce(files, preflight):
    bad = {
        "train": {
            "metric_for_best": "accuracy",
            "strategies": [{"name": "early_stopping", "metric": "rouge_l"}],
        },
        "search": {"metric": "perplexty"},
        "evaluate": {"metrics": ["r2", "micro_f1", "nopkg.metrics:cost"]},
    }
    problems, _ = preflight(_recipe(files, "regression", **bad))
    assert keys(problems) == [
        "train.metric_for_best",
        "train.strategies.0.metric",
        "search.metric",
        "evaluate.metrics.1",
        "evaluate.metrics.2",
    ]
    assert (
        "does not produce 'accuracy': it scores labels predictions and the task makes values" in problems[0]
    )
    assert "'rouge_l' is not computed from validation predictions" in problems[1]
    assert "did you mean 'perplexity'?" in problems[2]
    assert "cannot import metric 'nopkg.metrics:cost'" in problems[4]


def test_rouge_l_cannot_pick_the_best_sft_checkpoint(files, preflight):
    problems, _ = preflight(_recipe(files, "sft", "smollm2", train={"metric_for_best": "rouge_l"}))
    assert keys(problems) == ["train.metric_for_best"]
    assert "cannot pick the best checkpoint" in problems[0] and "['loss', 'perplexity']" in problems[0]


def test_a_declared_prediction_kind_wins_over_the_name():
    class Custom:
        name = "classification"
        prediction_kind = "values"

    assert prediction_kind(Custom()) == "values"
    assert prediction_kind(get_task("multilabel")) == "multilabel"
    assert prediction_kind(get_task("lm")) == "tokens"
