"""Group fairness with fairlearn's MetricFrame: per-group accuracy, selection rate, FPR and FNR with
bootstrap intervals, and the demographic-parity and equalized-odds differences.

Multiclass labels are audited one-vs-rest (each class in turn is "selected"), never a crash;
groups smaller than the minimum are reported as insufficient and left out of the differences.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np

from tunelab.metrics.bootstrap import bootstrap_interval


def group_metrics(
    gold: list[str],
    predicted: list[str],
    groups: list[str],
    labels: list[str],
    *,
    min_size: int,
    bootstrap_samples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Per-group figures and the differences across the groups large enough to judge."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
    )

    sizes = Counter(groups)
    ok = sorted(g for g, n in sizes.items() if n >= min_size)
    out: dict[str, Any] = {
        "sizes": dict(sorted(sizes.items())),
        "min_group_size": min_size,
        "insufficient": sorted(g for g, n in sizes.items() if n < min_size),
        "per_class": {},
    }
    keep = np.array([g in ok for g in groups])
    y = np.array(gold)[keep]
    p = np.array(predicted)[keep]
    grp = np.array(groups)[keep]
    acc = _per_group(lambda a, b: float(np.mean(a == b)), y, p, grp, ok, bootstrap_samples, confidence, seed)
    out["accuracy"] = acc
    classes = labels if len(labels) > 2 else labels[-1:]  # binary: the second label is "selected"
    for cls in classes:
        yt, yp = (y == cls).astype(int), (p == cls).astype(int)
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "fpr": false_positive_rate,
                "fnr": false_negative_rate,
            },
            y_true=yt,
            y_pred=yp,
            sensitive_features=grp,
        )
        by_group = {
            str(g): {
                name: _per_group_interval(fn, yt, yp, grp, g, bootstrap_samples, confidence, seed)
                for name, fn in (
                    ("selection_rate", selection_rate),
                    ("fpr", false_positive_rate),
                    ("fnr", false_negative_rate),
                )
            }
            for g in frame.by_group.index
        }
        enough = len(ok) >= 2
        out["per_class"][cls] = {
            "by_group": by_group,
            "demographic_parity_difference": float(
                demographic_parity_difference(yt, yp, sensitive_features=grp)
            )
            if enough
            else None,
            "equalized_odds_difference": float(equalized_odds_difference(yt, yp, sensitive_features=grp))
            if enough
            else None,
        }
    diffs = [
        c["demographic_parity_difference"]
        for c in out["per_class"].values()
        if c["demographic_parity_difference"] is not None
    ]
    odds = [
        c["equalized_odds_difference"]
        for c in out["per_class"].values()
        if c["equalized_odds_difference"] is not None
    ]
    out["demographic_parity_difference"] = max(diffs) if diffs else None
    out["equalized_odds_difference"] = max(odds) if odds else None
    return out


def _per_group(fn, y, p, grp, ok, samples, confidence, seed) -> dict[str, Any]:
    return {
        g: bootstrap_interval(
            fn, y[grp == g], p[grp == g], bootstrap_samples=samples, confidence=confidence, seed=seed
        )
        for g in ok
    }


def _per_group_interval(fn, yt, yp, grp, g, samples, confidence, seed) -> dict[str, Any]:
    """``fn`` on group ``g`` with its interval (a resample without negatives gives NaN, ignored)."""
    mask = grp == g

    def quiet(a, b) -> float:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return float(fn(a, b))

    return bootstrap_interval(
        quiet, yt[mask], yp[mask], bootstrap_samples=samples, confidence=confidence, seed=seed
    )
