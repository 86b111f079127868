"""The regression task: numeric labels, one output, MSE by default, lower-is-better metrics."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import sentiment_rows
from tests.unit.train.fit_helpers import cls_recipe, run_fit

from tunelab.batching import eval_batches
from tunelab.tasks import get_task


def _rows(n: int) -> list[dict]:
    # the score is decided by the sentiment word, as the label is in the classification tests
    return [{"text": r["text"], "label": "1.0" if r["label"] == "pos" else "-1.0"} for r in sentiment_rows(n)]


def test_regression_fits_numbers(tiny_bert, tmp_path):
    recipe = cls_recipe(tiny_bert, tmp_path, max_steps=12, eval_every=12, batch_size=16, learning_rate=3e-3)
    task = get_task("regression")
    model, tok = task.load_base(recipe)
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    rows = _rows(96)
    train, val = task.encode(rows[:64], tok, recipe), task.encode(rows[64:], tok, recipe)
    assert isinstance(train[0]["labels"], float)
    batch = task.collate(train[:4], tok)
    assert batch["labels"].dtype == torch.float32
    task.use_loss(recipe.train.loss, train)
    before = task.validate(model, eval_batches(val, task, tok, 32))
    result = run_fit(recipe, task, model, tok, train, val, tmp_path)
    after = result.final_validation
    assert set(after) == {"loss", "mse", "mae", "r2"} and after["loss"] == after["mse"]
    assert after["mse"] < before["mse"]
    assert result.metric == "mse" and not task.greater_is_better("mse") and task.greater_is_better("r2")
    ev = task.evaluate(model, tok, rows[64:], recipe)
    assert ev["mse"]["low"] <= ev["mse"]["value"] <= ev["mse"]["high"]
    assert ev["mse"]["value"] == pytest.approx(after["mse"], rel=1e-5)


def test_a_label_that_is_not_a_number_is_an_error(tiny_bert, tmp_path):
    recipe = cls_recipe(tiny_bert, tmp_path)
    task = get_task("regression")
    _, tok = task.load_base(recipe)
    with pytest.raises(ValueError, match="row 1: label 'pos' is not a number"):
        task.encode([{"text": "a", "label": "1.5"}, {"text": "b", "label": "pos"}], tok, recipe)


def test_classification_losses_do_not_fit_regression(tiny_bert, tmp_path):
    recipe = cls_recipe(tiny_bert, tmp_path, loss="focal")
    with pytest.raises(ValueError, match=r"this task needs one of \['mse'\]"):
        get_task("regression").use_loss(recipe.train.loss, [])
