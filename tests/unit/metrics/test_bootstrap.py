"""Bootstrap intervals: coverage of the point estimate, determinism, fast path vs generic path."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from tunelab.metrics.bootstrap import (
    bootstrap_classification,
    bootstrap_interval,
    bootstrap_mean,
    bootstrap_ratio,
    iter_resample_indices,
    paired_bootstrap_diff,
)
from tunelab.metrics.registry import Predictions, paired_difference

KEYS = {"value", "low", "high", "confidence", "bootstrap_samples"}


def _labels(n: int, n_labels: int = 4, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_labels, n)
    flip = rng.random(n) < noise
    return y, np.where(flip, rng.integers(0, n_labels, n), y)


def test_interval_contains_point_and_has_shape() -> None:
    x = np.random.default_rng(1).normal(2.0, 1.0, 500)
    out = bootstrap_interval(np.mean, x, bootstrap_samples=500, seed=3)
    assert set(out) == KEYS
    assert out["value"] == pytest.approx(x.mean())
    assert out["low"] < out["value"] < out["high"]
    assert out["bootstrap_samples"] == 500 and out["confidence"] == 0.95


def test_interval_narrows_with_more_data() -> None:
    rng = np.random.default_rng(2)
    small = bootstrap_mean(rng.random(100) < 0.7, bootstrap_samples=500)
    large = bootstrap_mean(rng.random(5000) < 0.7, bootstrap_samples=500)
    assert (large["high"] - large["low"]) < 0.5 * (small["high"] - small["low"])


def test_higher_confidence_is_wider() -> None:
    x = np.random.default_rng(4).random(300)
    narrow = bootstrap_mean(x, confidence=0.8)
    wide = bootstrap_mean(x, confidence=0.99)
    assert wide["low"] < narrow["low"] and wide["high"] > narrow["high"]


def test_deterministic_with_seed() -> None:
    x = np.random.default_rng(5).random(200)
    assert bootstrap_mean(x, seed=7) == bootstrap_mean(x, seed=7)
    assert bootstrap_mean(x, seed=7) != bootstrap_mean(x, seed=8)


def test_zero_samples_gives_no_interval() -> None:
    out = bootstrap_interval(np.mean, [1.0, 2.0, 3.0], bootstrap_samples=0)
    assert out == {"value": 2.0, "low": None, "high": None, "confidence": 0.95, "bootstrap_samples": 0}


def test_batched_matches_unbatched_and_chunks_are_seamless() -> None:
    x = np.random.default_rng(6).random(50)
    slow = bootstrap_interval(np.mean, x, bootstrap_samples=300, seed=9)
    fast = bootstrap_mean(x, bootstrap_samples=300, seed=9)
    assert fast == pytest.approx(slow)
    # Chunked generation yields the requested number of rows, all in range.
    chunks = list(iter_resample_indices(1_500_000, 3, seed=0))
    assert sum(len(c) for c in chunks) == 3 and len(chunks) == 3
    assert all(c.min() >= 0 and c.max() < 1_500_000 for c in chunks)


def test_same_indices_for_every_array() -> None:
    x = np.arange(100.0)
    out = bootstrap_interval(lambda a, b: float(np.abs(a - b).max()), x, x.copy(), bootstrap_samples=50)
    assert out["low"] == out["high"] == 0.0


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        bootstrap_interval(np.mean, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        bootstrap_interval(np.mean, [])
    with pytest.raises(ValueError):
        bootstrap_mean([1.0], confidence=1.5)
    with pytest.raises(ValueError):
        bootstrap_classification([0, 3], [0, 1], n_labels=3)


def test_fast_classification_matches_generic_sklearn_path() -> None:
    y, p = _labels(300, n_labels=5, seed=11)
    fast = bootstrap_classification(y, p, n_labels=5, bootstrap_samples=200, seed=13)
    acc = bootstrap_interval(accuracy_score, y, p, bootstrap_samples=200, seed=13)
    f1 = bootstrap_interval(
        lambda t, q: f1_score(t, q, average="macro", zero_division=0), y, p, bootstrap_samples=200, seed=13
    )
    assert fast["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert fast["macro_f1"] == pytest.approx(f1, abs=1e-12)


def test_fast_classification_handles_classes_missing_from_resamples() -> None:
    # Label 3 appears once: many resamples drop it; macro-F1 must still match sklearn's default.
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])
    p = np.array([0, 1, 1, 0, 2, 2, 0, 1, 2, 0])
    fast = bootstrap_classification(y, p, n_labels=4, bootstrap_samples=100, seed=1)
    slow = bootstrap_interval(
        lambda t, q: f1_score(t, q, average="macro", zero_division=0), y, p, bootstrap_samples=100, seed=1
    )
    assert fast["macro_f1"] == pytest.approx(slow, abs=1e-12)


def test_fast_classification_is_vectorised(monkeypatch) -> None:
    """The fast path never calls a per-resample metric function (how fast it is belongs in benchmarks)."""
    import tunelab.metrics.bootstrap as b

    def no_loop(*args, **kwargs):
        raise AssertionError("the fast path fell back to the per-resample loop")

    monkeypatch.setattr(b, "bootstrap_replicates", no_loop)
    y, p = _labels(1300, n_labels=6, seed=12)
    out = bootstrap_classification(y, p, n_labels=6, bootstrap_samples=1000)
    assert out["accuracy"]["bootstrap_samples"] == 1000


def test_ratio_of_sums() -> None:
    num, den = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0])
    out = bootstrap_ratio(num, den, bootstrap_samples=100, transform=np.exp)
    assert out["value"] == pytest.approx(np.exp(1.5))
    assert out["low"] <= out["value"] <= out["high"]


def test_paired_diff_generic_and_fast_agree() -> None:
    y, base = _labels(400, n_labels=3, noise=0.6, seed=20)
    _, tuned = _labels(400, n_labels=3, noise=0.2, seed=20)

    def preds(pred: np.ndarray) -> Predictions:
        return Predictions("labels", y, np.eye(3)[pred])

    fast = {
        name: paired_difference(
            name, preds(base), preds(tuned), bootstrap_samples=300, confidence=0.95, seed=2
        )
        for name in ("accuracy", "macro_f1")
    }
    generic = paired_bootstrap_diff(accuracy_score, (y, base), (y, tuned), bootstrap_samples=300, seed=2)
    assert {k: v for k, v in fast["accuracy"].items() if k != "higher_is_better"} == pytest.approx(
        generic, abs=1e-12
    )
    acc = fast["accuracy"]
    assert acc["value"] == pytest.approx(acc["b"] - acc["a"])
    assert acc["low"] > 0 and acc["prob_b_better"] == 1.0
    assert fast["macro_f1"]["value"] > 0


def test_paired_diff_identical_predictors() -> None:
    y, p = _labels(100, seed=3)
    out = paired_bootstrap_diff(accuracy_score, (y, p), (y, p), bootstrap_samples=50)
    assert out["value"] == 0.0 and out["low"] == out["high"] == 0.0
    assert out["prob_b_better"] == 0.0
    none = paired_bootstrap_diff(accuracy_score, (y, p), (y, p), bootstrap_samples=0)
    assert none["low"] is None and none["prob_b_better"] is None
