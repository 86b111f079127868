"""A user's own metric: a function of a Predictions, with its direction as an attribute."""

from __future__ import annotations

import numpy as np


def false_negative_cost(preds) -> float:
    """Missing a 'pos' review costs 5, a false alarm 1 (lower is better)."""
    pos = preds.labels.index("pos") if preds.labels else 1
    predicted = preds.predicted()
    missed = np.sum((preds.gold == pos) & (predicted != pos))
    alarms = np.sum((preds.gold != pos) & (predicted == pos))
    return float((5 * missed + alarms) / max(len(preds), 1))


false_negative_cost.higher_is_better = False
