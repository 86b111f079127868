"""Classification metrics vs sklearn, calibration (ECE, Brier, log loss), perplexity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.metrics import log_loss as sk_log_loss

from tunelab.metrics.classification import (
    brier_score,
    classification_metrics,
    expected_calibration_error,
    log_loss,
    perplexity_from_losses,
)
from tunelab.metrics.registry import Predictions, interval

LABELS = ["neg", "neu", "pos", "other"]


def _random_case(n: int = 250, seed: int = 0) -> tuple[list[int], list[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4)) + 2.0 * np.eye(4)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y.tolist(), probs.argmax(axis=1).tolist(), probs


def test_matches_sklearn_on_random_data() -> None:
    y, p, probs = _random_case()
    out = classification_metrics(y, p, probs, LABELS, bootstrap_samples=200, confidence=0.9, seed=1)
    assert out["accuracy"]["value"] == pytest.approx(accuracy_score(y, p))
    assert out["macro_f1"]["value"] == pytest.approx(f1_score(y, p, average="macro"))
    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=[0, 1, 2, 3], zero_division=0)
    for i, label in enumerate(LABELS):
        got = out["per_class"][label]
        assert got == pytest.approx({"precision": prec[i], "recall": rec[i], "f1": f1[i], "support": sup[i]})
    assert out["confusion_matrix"] == confusion_matrix(y, p, labels=[0, 1, 2, 3]).tolist()
    assert out["log_loss"] == pytest.approx(sk_log_loss(y, probs, labels=[0, 1, 2, 3]))
    assert out["accuracy"]["low"] <= out["accuracy"]["value"] <= out["accuracy"]["high"]
    assert out["accuracy"]["confidence"] == 0.9 and out["n"] == 250


def test_output_is_json_serialisable_and_plain() -> None:
    y, p, probs = _random_case(60, seed=2)
    out = classification_metrics(y, p, probs, LABELS, bootstrap_samples=20, confidence=0.95, seed=0)
    assert json.loads(json.dumps(out)) == out


def test_without_probs_and_absent_class() -> None:
    out = classification_metrics(
        [0, 1, 1], [0, 1, 0], None, LABELS, bootstrap_samples=0, confidence=0.95, seed=0
    )
    assert "ece" not in out and "brier" not in out and "log_loss" not in out
    assert out["per_class"]["other"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert out["macro_f1"]["value"] == pytest.approx(f1_score([0, 1, 1], [0, 1, 0], average="macro"))
    assert out["accuracy"]["low"] is None


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        classification_metrics([0, 4], [0, 1], None, LABELS, bootstrap_samples=0, confidence=0.95, seed=0)
    with pytest.raises(ValueError):
        classification_metrics(
            [0], [0], np.ones((1, 3)) / 3, LABELS, bootstrap_samples=0, confidence=0.95, seed=0
        )
    with pytest.raises(ValueError):
        classification_metrics([0], [0], None, ["a", "a"], bootstrap_samples=0, confidence=0.95, seed=0)


def test_ece_zero_when_perfectly_calibrated() -> None:
    # Ten rows predicted at 0.8 with eight right, five at 1.0 all right.
    probs = np.array([[0.8, 0.2]] * 10 + [[0.0, 1.0]] * 5)
    y = [0] * 8 + [1] * 2 + [1] * 5
    assert expected_calibration_error(y, probs) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error([0, 1], np.eye(2)) == 0.0


def test_ece_hand_computed() -> None:
    # Bin of conf 0.9: 1/2 right -> |0.5-0.9|; bin of conf 0.6: 2/2 right -> |1.0-0.6|; weights 1/2 each.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = [0, 1, 1, 1]
    assert expected_calibration_error(y, probs) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    # Both in one bin with 2 bins: conf mean 0.75, accuracy 0.75 -> 0.
    assert expected_calibration_error(y, probs, n_bins=2) == pytest.approx(0.0, abs=1e-12)


def test_brier_hand_computed() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    # Row 0 true 0: 0.09 + 0.04 + 0.01; row 1 true 2: 0.25 + 0.25 + 1.
    assert brier_score([0, 2], probs) == pytest.approx((0.14 + 1.5) / 2)
    assert brier_score([0, 1], np.eye(2)) == 0.0


def test_log_loss_clips_zero_probability() -> None:
    assert math.isfinite(log_loss([1], np.array([[1.0, 0.0]])))
    assert log_loss([0, 1], np.array([[0.5, 0.5], [0.25, 0.75]])) == pytest.approx(
        -(math.log(0.5) + math.log(0.75)) / 2
    )


def test_perplexity_is_exp_mean_nll() -> None:
    nll = np.array([2.0, 6.0, 1.5])
    tok = np.array([2, 4, 1])
    assert perplexity_from_losses(float(nll.sum()), int(tok.sum())) == pytest.approx(math.exp(9.5 / 7))
    assert perplexity_from_losses(10_000.0, 1) == math.inf
    with pytest.raises(ValueError):
        perplexity_from_losses(1.0, 0)
    out = interval(
        "perplexity", Predictions("tokens", tok, nll), bootstrap_samples=200, confidence=0.95, seed=0
    )
    assert out["value"] == pytest.approx(math.exp(9.5 / 7))
    assert out["low"] <= out["value"] <= out["high"]


def test_perplexity_interval_constant_per_token_loss() -> None:
    tok = np.array([3, 5, 7, 2])
    out = interval(
        "perplexity", Predictions("tokens", tok, 0.7 * tok), bootstrap_samples=100, confidence=0.95, seed=0
    )
    assert out["low"] == pytest.approx(math.exp(0.7)) and out["high"] == pytest.approx(math.exp(0.7))
