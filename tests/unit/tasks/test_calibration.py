"""Temperature scaling: the fit never raises validation log loss, it lowers an over-confident model's ECE,
and the saved temperature follows the model wherever it is loaded (load_tuned, merge, export, serve)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import sentiment_rows
from tests.unit.train.fit_helpers import LABELS, cls_recipe, run_fit

from tunelab.batching import eval_batches
from tunelab.metrics.classification import expected_calibration_error, log_loss
from tunelab.models.adapters import apply_adapter
from tunelab.tasks import get_task
from tunelab.tasks.base import MODEL_INFO
from tunelab.tasks.calibration import (
    calibration_report,
    fit_temperature,
    install_temperature,
    reliability_bins,
    remove_temperature,
    temperature_of,
    uncalibrated,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _nll(logits: np.ndarray, gold: np.ndarray, t: float) -> float:
    """Mean -log softmax(logits / t)[gold], in float64 and unclipped (numpy's own log-sum-exp)."""
    z = logits.astype(np.float64) / t
    m = z.max(axis=1, keepdims=True)
    log_p = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(gold)), gold].mean())


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 120),
    k=st.integers(2, 6),
    scale=st.sampled_from([0.05, 0.3, 1.0, 4.0, 25.0]),
    labels_from=st.sampled_from(["model", "noise", "argmax"]),
    seed=st.integers(0, 2**16),
)
def test_the_fit_never_raises_validation_log_loss(n, k, scale, labels_from, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * scale
    if labels_from == "model":  # already calibrated: labels drawn from the model's own probabilities
        gold = np.array([rng.choice(k, p=p) for p in _softmax(logits)])
    elif labels_from == "argmax":  # right every time: more confidence only helps
        gold = logits.argmax(axis=1)
    else:
        gold = rng.integers(0, k, size=n)
    fit = fit_temperature(torch.tensor(logits, dtype=torch.float32), torch.tensor(gold))
    assert fit.temperature > 0 and fit.rows == n
    assert fit.log_loss_after <= fit.log_loss_before
    at_one = _nll(logits.astype(np.float32), gold, 1.0)
    assert _nll(logits.astype(np.float32), gold, fit.temperature) <= at_one + 1e-9
    assert fit.log_loss_before == pytest.approx(at_one, rel=1e-6)


def test_the_fit_finds_the_temperature_that_made_the_logits_and_none_without_rows():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(3000, 4)) * 2.0
    gold = np.array([rng.choice(4, p=p) for p in _softmax(true)])
    calibrated = fit_temperature(torch.tensor(true), torch.tensor(gold)).temperature
    over = fit_temperature(torch.tensor(true * 3.0), torch.tensor(gold)).temperature  # over-confident
    under = fit_temperature(torch.tensor(true / 2.0), torch.tensor(gold)).temperature  # under-confident
    assert 0.9 < calibrated < 1.1
    assert over == pytest.approx(3.0 * calibrated, rel=0.01)  # the fit is exact up to xatol
    assert under == pytest.approx(calibrated / 2.0, rel=0.01) and under < 1
    empty = fit_temperature(torch.empty((0, 0)), torch.empty(0, dtype=torch.long))
    assert empty.temperature == 1.0 and empty.rows == 0 and empty.log_loss_before is None


def test_reliability_bins_are_the_ece_bins_and_before_is_recovered_from_after():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(400, 3)) * 3
    gold = rng.integers(0, 3, size=400)
    raw = _softmax(logits)
    calibrated = _softmax(logits / 2.5).astype(np.float32)
    np.testing.assert_allclose(uncalibrated(calibrated, 2.5), raw, rtol=1e-4, atol=1e-6)
    bins = reliability_bins(gold, raw)
    assert sum(b["count"] for b in bins) == 400 and len(bins) <= 15
    assert all(b["low"] < b["confidence"] <= b["high"] for b in bins)
    from_bins = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / 400
    assert from_bins == pytest.approx(expected_calibration_error(gold, raw))
    report = calibration_report(gold, calibrated, 2.5)
    assert report["temperature"] == 2.5 and set(report["before"]) == {"ece", "brier", "log_loss"}
    assert report["before"]["ece"] == pytest.approx(expected_calibration_error(gold, raw), abs=1e-4)
    assert report["after"]["log_loss"] == pytest.approx(log_loss(gold, calibrated))
    assert report["reliability"]["before"] != report["reliability"]["after"]


def _noisy_rows(n: int, seed: int, noise: float = 0.25) -> list[dict]:
    """Learnable reviews with a quarter of the labels flipped: no model can be right more than ~75%."""
    rng = random.Random(seed)
    flip = {"pos": "neg", "neg": "pos"}
    return [{**r, "label": flip[r["label"]] if rng.random() < noise else r["label"]}
            for r in sentiment_rows(n, seed)]


@pytest.fixture(scope="module")
def overconfident(tiny_bert, tmp_path_factory):
    """A tiny classifier trained on noisy labels, its logits then scaled up x10 (an over-confident
    model), with T fitted on validation by after_fit: (recipe, task, model, tokenizer, val, test rows)."""
    tmp = tmp_path_factory.mktemp("overconfident")
    recipe = cls_recipe(tiny_bert, tmp, max_steps=40, eval_every=40)
    task = get_task("classification")
    model, tok = task.load_base(recipe, LABELS)
    rows = _noisy_rows(360, seed=3)
    train, val = task.encode(rows[:200], tok, recipe, LABELS), task.encode(rows[200:280], tok, recipe, LABELS)
    task.use_loss(recipe.train.loss, train, LABELS)
    run_fit(recipe, task, model, tok, train, val, tmp)
    with torch.no_grad():
        model.classifier.weight.mul_(10.0)
        model.classifier.bias.mul_(10.0)
    learned = task.after_fit(model, val, tok, recipe)
    return recipe, task, model, tok, learned, rows[280:]


def test_after_fit_lowers_the_ece_of_an_over_confident_model(overconfident):
    recipe, task, model, tok, learned, test = overconfident
    assert learned["temperature"] > 1.5  # the x10 is (largely) taken back
    fit = learned["temperature_fit"]
    assert fit["validation_rows"] == 80 and fit["log_loss_after"] < fit["log_loss_before"]
    assert temperature_of(model) == learned["temperature"]
    ev, preds = task.evaluate(model, tok, test, recipe, LABELS)
    cal = ev["calibration"]
    assert cal["temperature"] == learned["temperature"]
    assert cal["after"]["ece"] < cal["before"]["ece"]
    assert cal["after"]["log_loss"] < cal["before"]["log_loss"]
    assert ev["ece"] == cal["after"]["ece"] and ev["log_loss"] == cal["after"]["log_loss"]  # calibrated
    assert sum(b["count"] for b in cal["reliability"]["after"]) == len(test)
    # predictions are the ones the raw logits give: T changes confidence, not the argmax
    raw_t = remove_temperature(model)
    _, raw = task.predict(model, eval_batches(task.encode(test, tok, recipe, LABELS), task, tok, 64))
    install_temperature(model, raw_t)
    assert (raw.predicted() == preds.predicted()).all()
    assert raw.scores.max(1).mean() > preds.scores.max(1).mean()
    assert cal["before"]["ece"] == pytest.approx(expected_calibration_error(raw.gold, raw.scores), abs=1e-4)


def test_the_saved_temperature_is_applied_when_the_model_is_loaded_again(overconfident, tmp_path):
    recipe, task, model, tok, learned, test = overconfident
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {**task.model_info(recipe, "base", LABELS), **learned}
    (folder / MODEL_INFO).write_text(json.dumps(info))
    feats = task.encode(test, tok, recipe, LABELS)
    _, calibrated = task.predict(model, eval_batches(feats, task, tok, 64))
    again, tok2 = task.load_tuned(folder, recipe, LABELS)
    assert temperature_of(again) == learned["temperature"]
    _, reloaded = task.predict(again, eval_batches(feats, task, tok2, 64))
    np.testing.assert_allclose(reloaded.scores, calibrated.scores, atol=1e-6)
    remove_temperature(again)
    _, plain = task.predict(again, eval_batches(feats, task, tok2, 64))
    assert np.abs(plain.scores - calibrated.scores).max() > 0.05


def _perturbed(model) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)


@pytest.mark.parametrize(
    "model_cfg",
    [{}, {"adapter": {"method": "lora", "r": 4}}, {"head": {"type": "linear", "pooling": "mean"}}],
    ids=["full", "lora", "tunelab-head"],
)
def test_load_tuned_divides_the_logits_by_the_saved_temperature(tiny_bert, tmp_path, model_cfg):
    recipe = cls_recipe(tiny_bert, tmp_path, model_cfg)
    task = get_task("classification")
    model, tok = task.load_base(recipe, LABELS)
    model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    _perturbed(model)
    model.eval()
    batch = dict(tok(["a great film", "dull and bland"], padding=True, return_tensors="pt"))
    with torch.no_grad():
        raw = model(**batch).logits
    folder = tmp_path / "out"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {**task.model_info(recipe, "base", LABELS), "temperature": 2.5}
    (folder / MODEL_INFO).write_text(json.dumps(info))
    again, _ = task.load_tuned(folder, recipe, LABELS)
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, raw / 2.5)
        if hasattr(again, "merge_and_unload"):  # the server merges an adapter: the hook stays
            torch.testing.assert_close(again.merge_and_unload()(**batch).logits, raw / 2.5)
    (folder / MODEL_INFO).write_text(json.dumps(task.model_info(recipe, "base", LABELS)))  # saved before
    old, _ = task.load_tuned(folder, recipe, LABELS)
    assert temperature_of(old) is None
    with torch.no_grad():
        torch.testing.assert_close(old(**batch).logits, raw)


def test_calibration_none_and_other_tasks_fit_no_temperature(tiny_bert, tmp_path):
    recipe = cls_recipe(tiny_bert, tmp_path, calibration="none")
    task = get_task("classification")
    model, tok = task.load_base(recipe, LABELS)
    val = task.encode(sentiment_rows(16), tok, recipe, LABELS)
    assert task.after_fit(model, val, tok, recipe) == {} and temperature_of(model) is None
    on = cls_recipe(tiny_bert, tmp_path)
    assert on.train.calibration == "temperature"
    assert task.after_fit(model, [], tok, on)["temperature"] == 1.0  # no validation rows: T = 1
    assert not get_task("regression").calibrates(on) and not get_task("multilabel").calibrates(on)


def test_an_export_folder_serves_calibrated_probabilities(tiny_bert, tmp_path):
    """What tunelab export writes for a calibrated run (raw weights, T in tunelab_export.json) is
    served divided by T: /v1/classify's probabilities are the evaluated ones."""
    from tunelab.serve.engine import TransformersEngine
    from tunelab.serve.export import EXPORT_INFO, _take_temperature
    from tunelab.serve.source import load_served

    recipe = cls_recipe(tiny_bert, tmp_path)
    task = get_task("classification")
    model, tok = task.load_base(recipe, LABELS)
    _perturbed(model)
    model.eval()
    texts = ["a great film", "dull and bland and boring"]
    batch = dict(tok(texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        raw = model(**batch).logits
    install_temperature(model, 3.0)
    taken = _take_temperature(model)
    assert taken == {"temperature": 3.0} and temperature_of(model) is None
    folder = tmp_path / "export"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    info = {"task": "classification", "labels": LABELS, "max_length": 32, **taken}
    (folder / EXPORT_INFO).write_text(json.dumps(info))
    served = load_served(folder)
    got = TransformersEngine(served).classify(texts)
    np.testing.assert_allclose([p for p, _ in got], torch.softmax(raw / 3.0, -1).numpy(), atol=1e-6)


def test_the_report_shows_before_and_after_diagrams(tmp_path):
    from tunelab.report.common import Run
    from tunelab.report.sections_model import _reliability

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(200, 2)) * 6
    gold = rng.integers(0, 2, size=200)
    cal = calibration_report(gold, _softmax(logits / 4.0), 4.0)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval.json").write_text(json.dumps({"split": "test", "calibration": cal}))
    (tmp_path / "metrics/predictions.jsonl").write_text("")
    page = _reliability(Run.open(tmp_path))
    assert page.count("<svg") == 2 and "T = 4" in page
    assert cal["after"]["ece"] < cal["before"]["ece"]
    assert f"ECE {cal['before']['ece']:.3g} -&gt; {cal['after']['ece']:.3g}" in page
