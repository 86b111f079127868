"""The regression task: numeric labels, one output, MSE by default, lower-is-better error metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tests.helpers import scored_rows
from tests.unit.train.fit_helpers import cls_recipe, run_fit

from tunelab.batching import eval_batches
from tunelab.metrics.registry import Predictions, value
from tunelab.tasks import get_task


@pytest.mark.parametrize(
    ("raw", "want"), [(3, 3.0), (-2.5, -2.5), ("1.5", 1.5), (" 7 ", 7.0), ("1e-3", 0.001), (0, 0.0)]
)
def test_numbers_and_numeric_strings_become_floats(raw, want):
    label, why = get_task("regression").parse_label(raw, None)
    assert why is None and isinstance(label, float) and label == want


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "label 'abc' is not a number (regression)"),
        ("nan", "label 'nan' is not a finite number (regression)"),
        (math.inf, "label inf (float) is not a finite number (regression)"),
        (True, "label True (bool) is not a number (regression)"),
        ([1, 2], "label [1, 2] (list) is not a number (regression)"),
    ],
)
def test_other_values_get_a_reason_that_says_what_they_were(raw, reason):
    assert get_task("regression").parse_label(raw, None) == (None, reason)


def test_regression_fits_numbers(tiny_bert, tmp_path, fresh_accelerator_state):
    # fp32: fit validates under the training precision, and evaluate (below) runs the model as loaded
    recipe = cls_recipe(
        tiny_bert, tmp_path, max_steps=40, eval_every=20, batch_size=16, learning_rate=3e-3, precision="fp32"
    )
    task = get_task("regression")
    model, tok = task.load_base(recipe)
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    rows = scored_rows(96)
    train, val = task.encode(rows[:64], tok, recipe), task.encode(rows[64:], tok, recipe)
    assert isinstance(train[0]["labels"], float)
    assert task.collate(train[:4], tok)["labels"].dtype == torch.float32
    task.use_loss(recipe.train.loss, train)
    before = task.validate(model, eval_batches(val, task, tok, 32))
    result = run_fit(recipe, task, model, tok, train, val, tmp_path)
    after = result.final_validation
    assert set(after) == {"loss", "rmse", "mae", "r2"}
    assert after["loss"] == pytest.approx(after["rmse"] ** 2, rel=1e-5)  # the loss is the MSE
    assert after["rmse"] < before["rmse"]
    assert result.metric == "rmse" and not task.greater_is_better("rmse") and task.greater_is_better("r2")

    ev, preds = task.evaluate(model, tok, rows[64:], recipe, None)
    assert preds.kind == "values" and len(preds) == 32
    for name in ("mae", "rmse", "r2", "pearson", "spearman"):
        assert ev[name]["low"] <= ev[name]["value"] <= ev[name]["high"], name
    assert ev["rmse"]["value"] == pytest.approx(after["rmse"], rel=1e-4)
    assert set(ev["target"]) == {"mean", "std", "min", "max"}
    out = task.prediction_rows(rows[64:], preds)
    assert out[0]["text"] == rows[64]["text"] and out[0]["target"] == pytest.approx(rows[64]["label"])
    assert out[0]["prediction"] == pytest.approx(float(preds.scores[0]), abs=1e-6)
    assert task.losses_of(preds) == pytest.approx((preds.scores - preds.gold) ** 2)


def test_metrics_read_values_predictions():
    p = Predictions("values", np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 4.0]))
    assert value("mae", p) == pytest.approx(0.25)
    assert value("rmse", p) == pytest.approx(math.sqrt(0.125))
    assert value("r2", p) == pytest.approx(1 - 0.125 / 1.25)
    assert value("spearman", p) == pytest.approx(1.0)


def test_a_label_that_is_not_a_number_is_an_error_at_encoding(tiny_bert, tmp_path):
    recipe = cls_recipe(tiny_bert, tmp_path)
    task = get_task("regression")
    _, tok = task.load_base(recipe)
    with pytest.raises(ValueError, match="row 1: label 'pos' is not a number"):
        task.encode([{"text": "a", "label": "1.5"}, {"text": "b", "label": "pos"}], tok, recipe)


def test_classification_losses_do_not_fit_regression(tiny_bert, tmp_path):
    recipe = cls_recipe(tiny_bert, tmp_path, loss="focal")
    with pytest.raises(ValueError, match=r"this task needs one of \['mse'\]"):
        get_task("regression").use_loss(recipe.train.loss, [])
