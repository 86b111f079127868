"""Name preflight: cleaning steps, dotted-path losses and strategies, and losses that fit the task."""

from __future__ import annotations

import pytest
from tests.helpers import sentiment_rows, write_jsonl
from tests.unit.preflight.conftest import keys


@pytest.fixture
def base(tmp_path) -> dict:
    rows = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(20))
    return {"data": {"sources": [{"path": str(rows)}]}, "model": {"name": "minilm"}}


def _with(base: dict, clean_steps=None, **train) -> dict:
    raw = {**base, "data": dict(base["data"]), "train": train}
    if clean_steps is not None:
        raw["data"]["clean"] = {"steps": clean_steps}
    return raw


def test_good_names_pass(base, preflight):
    raw = _with(
        base,
        ["unicode", "tunelab.data.clean:html_step", "whitespace", "labels"],
        loss={"name": "focal", "gamma": 2.0},
        strategies=[{"name": "layerwise_lr"}, {"name": "tunelab.data.clean.length_step"}],
    )
    assert preflight(raw) == ([], [])
    assert preflight(_with(base, loss="tunelab.tasks.losses:Focal")) == ([], [])


def test_unknown_and_unimportable_cleaning_steps(base, preflight):
    problems, _ = preflight(_with(base, ["unicode", "whitespce", "nopkg.steps:mine", "labels"]))
    assert keys(problems) == ["data.clean.steps.1", "data.clean.steps.2"]
    assert "did you mean 'whitespace'?" in problems[0] and "known: html, labels" in problems[0]
    assert "cannot import cleaning step 'nopkg.steps:mine'" in problems[1]


def test_dotted_losses_and_strategies_must_import(base, preflight):
    problems, _ = preflight(
        _with(base, loss="nopkg.losses:Mine", strategies=[{"name": "tunelab.data.clean:no_such_thing"}])
    )
    assert keys(problems) == ["train.loss", "train.strategies.0"]
    assert "cannot import loss 'nopkg.losses:Mine'" in problems[0]
    assert "no_such_thing" in problems[1]


def test_a_loss_for_another_task_is_a_problem(base, preflight):
    problems, _ = preflight(_with(base, loss="answer_only"))
    assert keys(problems) == ["train.loss"]
    assert "scores token outputs" in problems[0] and "'cross_entropy'" in problems[0]


def test_a_dotted_loss_declaring_another_kind_is_a_problem(base, preflight):
    problems, _ = preflight(_with(base, loss="tunelab.tasks.losses:MSE"))
    assert keys(problems) == ["train.loss"] and "scores regression outputs" in problems[0]
