"""The multilabel task: label sets, a sigmoid per label, BCE, a threshold tuned on validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.helpers import multilabel_recipe, tagged_rows
from tests.unit.train.fit_helpers import run_fit

from tunelab.batching import eval_batches
from tunelab.config import validate_recipe
from tunelab.metrics.registry import Predictions, value
from tunelab.tasks import get_task
from tunelab.tasks.base import MODEL_INFO
from tunelab.tasks.losses import LossData, build_loss
from tunelab.tasks.multilabel import THRESHOLD_GRID, best_threshold, saved_threshold

LABELS = ["downbeat", "question", "upbeat"]


def _recipe(tiny_bert, tmp_path, delimiter: str | None = None, **train):
    return validate_recipe(
        multilabel_recipe(tiny_bert, tmp_path / "unused.jsonl", tmp_path / "runs", delimiter, **train)
    )


@pytest.mark.parametrize(
    ("raw", "delimiter", "want"),
    [
        (["b", "a", "b"], None, ("a", "b")),  # sorted, each once
        (("x",), None, ("x",)),
        (["a", " c "], None, ("a", "c")),
        ("sports|news", "|", ("news", "sports")),
        ("sports | news |", "|", ("news", "sports")),
        ("sports|news", None, ("sports|news",)),  # no delimiter configured: one label
        ("solo", "|", ("solo",)),
        (3, None, ("3",)),
    ],
)
def test_label_sets_from_lists_and_delimited_strings(tiny_bert, tmp_path, raw, delimiter, want):
    recipe = _recipe(tiny_bert, tmp_path, delimiter)
    assert get_task("multilabel").parse_label(raw, recipe) == (want, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], "empty label set"),
        (["", "  "], "empty label set"),
        ("|", "empty label set"),
        (["a", 1.5], "label set members must be strings, got float '1.5'"),
        ({"a": 1}, "label must be a list of strings or a '|'-delimited string, got dict \"{'a': 1}\""),
    ],
)
def test_bad_label_sets_get_a_reason(tiny_bert, tmp_path, raw, reason):
    recipe = _recipe(tiny_bert, tmp_path, "|")
    assert get_task("multilabel").parse_label(raw, recipe) == (None, reason)


def test_vocabulary_is_the_union_of_train_label_sets():
    task = get_task("multilabel")
    assert task.label_vocabulary([("b", "c"), ("a",), ("c",)]) == ["a", "b", "c"]


def test_model_is_a_multi_label_sequence_classifier(tiny_bert, tmp_path):
    task = get_task("multilabel")
    model, _ = task.load_base(_recipe(tiny_bert, tmp_path), LABELS)
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.num_labels == 3 and model.config.id2label == dict(enumerate(LABELS))
    with pytest.raises(ValueError, match="needs the label list"):
        task.load_base(_recipe(tiny_bert, tmp_path), None)


def test_encode_makes_multi_hot_targets(tiny_bert, tmp_path):
    recipe = _recipe(tiny_bert, tmp_path)
    task = get_task("multilabel")
    _, tok = task.load_base(recipe, LABELS)
    feats = task.encode([{"text": "what ?", "label": ["question", "upbeat"]}], tok, recipe, LABELS)
    assert feats[0]["labels"] == [0, 1, 1]
    batch = task.collate(feats, tok)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (1, 3)
    with pytest.raises(ValueError, match=r"labels \['sports'\] are not among the trained labels"):
        task.encode([{"text": "a", "label": ["sports"]}], tok, recipe, LABELS)


def test_bce_is_the_mean_binary_cross_entropy_and_the_default():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(logits)
    want = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert build_loss("bce", {}, "multilabel", LossData())(logits, y).item() == pytest.approx(want.item())
    task = get_task("multilabel")
    task.use_loss(None, [])
    assert type(task._loss).__name__ == "BCE"
    with pytest.raises(ValueError, match=r"this task needs one of \['bce'\]"):
        build_loss("focal", {}, "multilabel", LossData())


def test_metrics_read_multilabel_predictions():
    gold = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.7, 0.4], [0.8, 0.3, 0.1]])
    p = Predictions("multilabel", gold, probs)
    assert value("subset_accuracy", p) == pytest.approx(2 / 3)
    assert value("micro_f1", p) == pytest.approx(2 * 4 / (2 * 4 + 0 + 1))
    low = Predictions("multilabel", gold, probs, threshold=0.25)  # finds row 2's label, adds one to row 1
    assert value("subset_accuracy", low) == pytest.approx(2 / 3)
    assert value("micro_f1", low) == pytest.approx(2 * 5 / (2 * 5 + 1 + 0))


def test_best_threshold_maximises_micro_f1_and_prefers_half_on_ties():
    gold = np.array([[1, 0], [0, 1], [1, 1]])
    probs = np.array([[0.3, 0.1], [0.2, 0.35], [0.4, 0.32]])  # every positive above 0.3, negatives below
    assert best_threshold(gold, probs) == 0.3
    assert best_threshold(gold, np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.9]])) == 0.5
    assert THRESHOLD_GRID[0] == 0.05 and THRESHOLD_GRID[-1] == 0.95 and len(THRESHOLD_GRID) == 19


def test_fit_tune_threshold_evaluate_and_reload(tiny_bert, tmp_path):
    recipe = _recipe(tiny_bert, tmp_path, max_steps=30, eval_every=15)
    task = get_task("multilabel")
    model, tok = task.load_base(recipe, LABELS)
    rows = tagged_rows(112)
    train, val = task.encode(rows[:80], tok, recipe, LABELS), task.encode(rows[80:], tok, recipe, LABELS)
    task.use_loss(recipe.train.loss, train, LABELS)
    before = task.validate(model, eval_batches(val, task, tok, 32))
    result = run_fit(recipe, task, model, tok, train, val, tmp_path)
    assert set(result.final_validation) == {"loss", "micro_f1", "macro_f1"}
    assert result.metric == "micro_f1" and task.greater_is_better("micro_f1")
    assert result.final_validation["loss"] < before["loss"]

    learned = task.after_fit(model, val, tok, recipe)
    assert set(learned) == {"threshold"} and learned["threshold"] in THRESHOLD_GRID
    ev, preds = task.evaluate(model, tok, rows[80:], recipe, LABELS)
    assert preds.kind == "multilabel" and preds.threshold == learned["threshold"]
    assert ev["threshold"] == learned["threshold"]
    assert set(ev["per_label"]) == set(LABELS)
    assert set(ev["per_label"]["upbeat"]) == {"precision", "recall", "f1", "support"}
    assert sum(v["support"] for v in ev["per_label"].values()) == int(preds.gold.sum())
    for name in ("micro_f1", "macro_f1", "subset_accuracy"):
        assert ev[name]["low"] <= ev[name]["value"] <= ev[name]["high"], name
    out = task.prediction_rows(rows[80:], preds)
    assert out[0]["labels"] == sorted(rows[80]["label"]) and set(out[0]["probabilities"]) == set(LABELS)
    assert out[0]["predicted"] == [
        n for n in LABELS if out[0]["probabilities"][n] >= learned["threshold"] - 1e-6
    ]
    assert task.losses_of(preds).shape == (32,)

    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / MODEL_INFO).write_text(json.dumps({"task": "multilabel", "threshold": 0.35}))
    assert saved_threshold(folder) == 0.35 and saved_threshold(tmp_path) == 0.5
    again, tok2 = task.load_tuned(folder, recipe, LABELS)
    _, reloaded = task.predict(again, eval_batches(val, task, tok2, 32))
    assert reloaded.threshold == 0.35
    base, _ = task.load_base(recipe, LABELS)
    assert task.predict(base, eval_batches(val, task, tok, 32))[1].threshold == 0.5
