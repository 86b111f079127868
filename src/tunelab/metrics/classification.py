"""Classification, calibration and perplexity metrics; JSON-serialisable results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tunelab.metrics.bootstrap import bootstrap_classification


def _check_probs(y_true: NDArray[np.int64], probs: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"probs must have shape (n_rows, n_labels), got {p.shape} for {y_true.shape[0]} rows"
        )
    if p.shape[0] == 0:
        raise ValueError("no rows")
    if y_true.min() < 0 or y_true.max() >= p.shape[1]:
        raise ValueError("y_true holds ids outside the probs columns")
    return p


def confidence_bins(
    y_true: ArrayLike, probs: ArrayLike, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins of the top-label confidence: (edges, count, confidence sum, correct sum) per
    bin, bin b holding (edges[b], edges[b+1]]. The ECE and the reliability diagrams share them."""
    # Hand-written: sklearn only has calibration_curve (binary, one class at a time), no multiclass ECE.
    t = np.asarray(y_true, dtype=np.int64)
    p = _check_probs(t, probs)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], conf, side="left")
    count = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    return edges, count, conf_sum, acc_sum


def expected_calibration_error(y_true: ArrayLike, probs: ArrayLike, n_bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins of (n_bin / n) * |accuracy - confidence|."""
    _, count, conf_sum, acc_sum = confidence_bins(y_true, probs, n_bins)
    return float(np.abs(acc_sum - conf_sum).sum() / count.sum())


def brier_score(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Multiclass Brier score: mean over rows of the squared error against the one-hot label."""
    t = np.asarray(y_true, dtype=np.int64)
    p = _check_probs(t, probs)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(t)), t] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def log_loss(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean negative log-probability of the true label (probabilities clipped at machine eps)."""
    t = np.asarray(y_true, dtype=np.int64)
    p = _check_probs(t, probs)
    eps = np.finfo(np.float64).eps
    return float(-np.log(np.clip(p[np.arange(len(t)), t], eps, 1.0)).mean())


def classification_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    probs: np.ndarray | None,
    labels: Sequence[str],
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy and macro-F1 (with bootstrap intervals), per-class scores, confusion matrix, calibration.

    ``y_true``/``y_pred`` are ids into ``labels``. Macro-F1 averages the classes present in y_true or
    y_pred (sklearn's default). Calibration keys (``ece``, ``brier``, ``log_loss``) only when ``probs``.
    """
    from sklearn.metrics import precision_recall_fscore_support  # lazy: a second to import

    n_labels = len(labels)
    if n_labels == 0 or len(set(labels)) != n_labels:
        raise ValueError("labels must be non-empty and unique")
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    boot = bootstrap_classification(
        t, p, n_labels, bootstrap_samples=bootstrap_samples, confidence=confidence, seed=seed
    )
    label_ids = list(range(n_labels))
    prec, rec, f1, support = precision_recall_fscore_support(
        t, p, labels=label_ids, average=None, zero_division=0
    )
    cm = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    out: dict[str, Any] = {
        "n": len(t),
        "labels": list(labels),
        "accuracy": boot["accuracy"],
        "macro_f1": boot["macro_f1"],
        "per_class": {
            label: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }
    if probs is not None:
        pr = np.asarray(probs, dtype=np.float64)
        if pr.ndim != 2 or pr.shape[1] != n_labels:
            raise ValueError(f"probs must have {n_labels} columns, got shape {pr.shape}")
        out["ece"] = expected_calibration_error(t, pr)
        out["brier"] = brier_score(t, pr)
        out["log_loss"] = log_loss(t, pr)
    return out


def perplexity_from_losses(total_nll: float, total_tokens: int) -> float:
    """``exp(total_nll / total_tokens)``; ``inf`` when it overflows."""
    if total_tokens <= 0:
        raise ValueError(f"total_tokens must be positive, got {total_tokens}")
    mean = total_nll / total_tokens
    return math.exp(mean) if mean < 709.0 else math.inf
