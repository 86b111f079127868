"""Percentile bootstrap intervals over rows, with vectorised fast paths for common metrics.

Every bootstrap here draws its row indices from :func:`iter_resample_indices`, so two calls with the
same ``(n_rows, bootstrap_samples, seed)`` see identical resamples: the fast classification path and the
generic path agree exactly, and paired comparisons resample base and tuned rows together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

Interval = dict[str, Any]
"""``{"value", "low", "high", "confidence", "bootstrap_samples"}``; low/high are None without resamples."""

FloatArray = NDArray[np.float64]

_MAX_INDEX_CELLS = 2_000_000  # resampled indices held at once (~16 MB of int64)


def _check_settings(bootstrap_samples: int, confidence: float) -> None:
    if bootstrap_samples < 0:
        raise ValueError(f"bootstrap_samples must be >= 0, got {bootstrap_samples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def iter_resample_indices(n_rows: int, bootstrap_samples: int, seed: int = 0) -> Iterator[NDArray[np.int64]]:
    """Yield bootstrap row indices in chunks of shape ``(k, n_rows)``, ``bootstrap_samples`` rows in all."""
    if n_rows <= 0:
        raise ValueError("cannot bootstrap zero rows")
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_INDEX_CELLS // n_rows)
    done = 0
    while done < bootstrap_samples:
        k = min(chunk, bootstrap_samples - done)
        yield rng.integers(0, n_rows, size=(k, n_rows), dtype=np.int64)
        done += k


def percentile_interval(estimates: ArrayLike, confidence: float) -> tuple[float | None, float | None]:
    """Equal-tailed percentile interval of the finite ``estimates``; ``(None, None)`` if none."""
    est = np.asarray(estimates, dtype=np.float64).ravel()
    est = est[np.isfinite(est)]
    if est.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(est, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def make_interval(value: float, replicates: FloatArray, confidence: float) -> Interval:
    """Build the interval dict from a point estimate and its bootstrap replicates."""
    bootstrap_samples = int(replicates.size)
    low, high = percentile_interval(replicates, confidence) if bootstrap_samples else (None, None)
    return {
        "value": float(value),
        "low": low,
        "high": high,
        "confidence": float(confidence),
        "bootstrap_samples": bootstrap_samples,
    }


def _as_row_arrays(arrays: Sequence[ArrayLike]) -> tuple[list[np.ndarray], int]:
    arrs = [np.asarray(a) for a in arrays]
    if not arrs:
        raise ValueError("at least one array is required")
    if any(a.ndim == 0 for a in arrs):
        raise ValueError("arrays must have at least one dimension (rows)")
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ValueError(f"arrays differ in length: {[len(a) for a in arrs]}")
    if n == 0:
        raise ValueError("cannot bootstrap zero rows")
    return arrs, n


def bootstrap_replicates(
    metric_fn: Callable[..., Any],
    *arrays: ArrayLike,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    batched: bool = False,
) -> FloatArray:
    """The metric on each resample, shape ``(bootstrap_samples,)``.

    With ``batched=True`` ``metric_fn`` receives arrays with a leading resample axis ``(k, n, ...)``
    and must return ``k`` values; otherwise it is called once per resample with ``(n, ...)`` arrays.
    """
    arrs, n = _as_row_arrays(arrays)
    out: list[float] = []
    for idx in iter_resample_indices(n, bootstrap_samples, seed):
        if batched:
            vals = np.asarray(metric_fn(*(a[idx] for a in arrs)), dtype=np.float64).reshape(len(idx))
            out.extend(vals.tolist())
        else:
            out.extend(float(metric_fn(*(a[row] for a in arrs))) for row in idx)
    return np.asarray(out, dtype=np.float64)


def _point(metric_fn: Callable[..., Any], arrs: Sequence[np.ndarray], batched: bool) -> float:
    if batched:
        return float(np.asarray(metric_fn(*(a[None] for a in arrs)), dtype=np.float64).reshape(-1)[0])
    return float(metric_fn(*arrs))


def bootstrap_interval(
    metric_fn: Callable[..., Any],
    *arrays: ArrayLike,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> Interval:
    """Point estimate of ``metric_fn(*arrays)`` and its percentile bootstrap interval over rows.

    The same resampled row indices are applied to every array. See :func:`bootstrap_replicates`
    for ``batched``.
    """
    _check_settings(bootstrap_samples, confidence)
    arrs, _ = _as_row_arrays(arrays)
    value = _point(metric_fn, arrs, batched)
    reps = bootstrap_replicates(
        metric_fn, *arrs, bootstrap_samples=bootstrap_samples, seed=seed, batched=batched
    )
    return make_interval(value, reps, confidence)


def bootstrap_mean(
    values: ArrayLike, bootstrap_samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Vectorised bootstrap interval of the mean of a 1-D array."""
    return bootstrap_interval(
        lambda x: x.mean(axis=1),
        np.asarray(values, dtype=np.float64),
        bootstrap_samples=bootstrap_samples,
        confidence=confidence,
        seed=seed,
        batched=True,
    )


def bootstrap_ratio(
    numer: ArrayLike,
    denom: ArrayLike,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    transform: Callable[[FloatArray], FloatArray] | None = None,
) -> Interval:
    """Vectorised interval of ``transform(sum(numer) / sum(denom))`` (ratio of sums per resample)."""

    def ratio(n: FloatArray, d: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = n.sum(axis=1) / d.sum(axis=1)
            return transform(r) if transform is not None else r

    return bootstrap_interval(
        ratio,
        np.asarray(numer, dtype=np.float64),
        np.asarray(denom, dtype=np.float64),
        bootstrap_samples=bootstrap_samples,
        confidence=confidence,
        seed=seed,
        batched=True,
    )


# ---- classification fast path: metrics from per-resample confusion matrices ----


def confusion_matrices(
    y_true: NDArray[np.int64], y_pred: NDArray[np.int64], n_labels: int, idx: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Confusion matrices (rows = true) for each index row of ``idx`` ``(k, n)``: shape ``(k, L, L)``."""
    sq = n_labels * n_labels
    codes = (y_true * n_labels + y_pred)[idx] + (np.arange(idx.shape[0]) * sq)[:, None]
    return np.bincount(codes.ravel(), minlength=idx.shape[0] * sq).reshape(-1, n_labels, n_labels)


def accuracy_from_confusion(cm: NDArray[np.int64]) -> FloatArray:
    """Accuracy from ``(..., L, L)`` confusion matrices."""
    return np.trace(cm, axis1=-2, axis2=-1) / cm.sum(axis=(-2, -1))


def macro_f1_from_confusion(cm: NDArray[np.int64]) -> FloatArray:
    """Macro-F1 over the classes present in y_true or y_pred (sklearn's default label set)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)  # support + predicted = 2tp + fp + fn
    present = denom > 0
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=present)
    return f1.sum(axis=-1) / present.sum(axis=-1)


def _as_labels(y: ArrayLike, n_labels: int, name: str) -> NDArray[np.int64]:
    arr = np.asarray(y, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if arr.size and (arr.min() < 0 or arr.max() >= n_labels):
        raise ValueError(f"{name} holds ids outside [0, {n_labels})")
    return arr


def classification_replicates(
    y_true: ArrayLike, y_pred: ArrayLike, n_labels: int, bootstrap_samples: int = 1000, seed: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Per-resample (accuracy, macro-F1), each of shape ``(bootstrap_samples,)``."""
    t = _as_labels(y_true, n_labels, "y_true")
    p = _as_labels(y_pred, n_labels, "y_pred")
    _, n = _as_row_arrays([t, p])
    acc: list[FloatArray] = [np.empty(0)]
    f1: list[FloatArray] = [np.empty(0)]
    for idx in iter_resample_indices(n, bootstrap_samples, seed):
        cm = confusion_matrices(t, p, n_labels, idx)
        acc.append(accuracy_from_confusion(cm))
        f1.append(macro_f1_from_confusion(cm))
    return np.concatenate(acc), np.concatenate(f1)


def _full_confusion(y_true: ArrayLike, y_pred: ArrayLike, n_labels: int) -> NDArray[np.int64]:
    t = _as_labels(y_true, n_labels, "y_true")
    p = _as_labels(y_pred, n_labels, "y_pred")
    _as_row_arrays([t, p])
    return confusion_matrices(t, p, n_labels, np.arange(len(t))[None])[0]


def bootstrap_classification(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    n_labels: int,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """``{"accuracy": Interval, "macro_f1": Interval}`` from per-resample confusion matrices."""
    _check_settings(bootstrap_samples, confidence)
    cm = _full_confusion(y_true, y_pred, n_labels)
    acc, f1 = classification_replicates(y_true, y_pred, n_labels, bootstrap_samples, seed)
    return {
        "accuracy": make_interval(float(accuracy_from_confusion(cm)), acc, confidence),
        "macro_f1": make_interval(float(macro_f1_from_confusion(cm)), f1, confidence),
    }


# ---- paired comparison (base vs tuned on the same rows) ----


def make_diff(a: float, b: float, reps_a: FloatArray, reps_b: FloatArray, confidence: float) -> Interval:
    """Interval of ``b - a`` plus ``a``, ``b`` and ``prob_b_better`` (share of resamples with b > a)."""
    diffs = reps_b - reps_a
    out = make_interval(b - a, diffs, confidence)
    finite = np.isfinite(diffs)
    out["a"] = float(a)
    out["b"] = float(b)
    out["prob_b_better"] = float(np.mean(diffs[finite] > 0)) if finite.any() else None
    return out


def paired_bootstrap_diff(
    metric_fn: Callable[..., Any],
    a_arrays: Sequence[ArrayLike],
    b_arrays: Sequence[ArrayLike],
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> Interval:
    """Paired bootstrap of ``metric(b) - metric(a)``; a and b rows are resampled with the same indices.

    Returns the :data:`Interval` keys (``value`` is the difference) plus ``a``, ``b``, ``prob_b_better``.
    """
    _check_settings(bootstrap_samples, confidence)
    a_arrs, n_a = _as_row_arrays(a_arrays)
    b_arrs, n_b = _as_row_arrays(b_arrays)
    if n_a != n_b:
        raise ValueError(f"paired arrays differ in length: {n_a} vs {n_b}")
    a = _point(metric_fn, a_arrs, batched)
    b = _point(metric_fn, b_arrs, batched)
    reps_a = bootstrap_replicates(
        metric_fn, *a_arrs, bootstrap_samples=bootstrap_samples, seed=seed, batched=batched
    )
    reps_b = bootstrap_replicates(
        metric_fn, *b_arrs, bootstrap_samples=bootstrap_samples, seed=seed, batched=batched
    )
    return make_diff(a, b, reps_a, reps_b, confidence)
