"""The built-in metrics, registered by name with their direction (see ``metrics.registry``)."""

from __future__ import annotations

import math

import numpy as np

from tunelab.metrics.classification import (
    brier_score,
    expected_calibration_error,
    log_loss,
    perplexity_from_losses,
)
from tunelab.metrics.registry import METRICS, Metric, Predictions, metric

# Figures a task reports itself (no function of predictions), registered for their direction.
METRICS.register("loss")(Metric("loss", higher_is_better=False))
METRICS.register("rouge_l")(Metric("rouge_l", higher_is_better=True))
METRICS.register("probe_accuracy")(Metric("probe_accuracy", higher_is_better=True))
METRICS.register("probe_r2")(Metric("probe_r2", higher_is_better=True))
METRICS.register("probe_micro_f1")(Metric("probe_micro_f1", higher_is_better=True))


# ---- single-label classification --------------------------------------------------------------
@metric("accuracy", kinds=("labels",))
def accuracy(p: Predictions) -> float:
    return float((p.predicted() == p.gold).mean())


@metric("macro_f1", kinds=("labels", "multilabel"))
def macro_f1(p: Predictions) -> float:
    from sklearn.metrics import f1_score  # lazy: sklearn takes a second to import

    return float(f1_score(p.gold, p.predicted(), average="macro", zero_division=0))


@metric("ece", higher_is_better=False, kinds=("labels",))
def ece(p: Predictions) -> float:
    return expected_calibration_error(p.gold, p.scores)


@metric("brier", higher_is_better=False, kinds=("labels",))
def brier(p: Predictions) -> float:
    return brier_score(p.gold, p.scores)


@metric("log_loss", higher_is_better=False, kinds=("labels",))
def mean_log_loss(p: Predictions) -> float:
    return log_loss(p.gold, p.scores)


# ---- multi-label ------------------------------------------------------------------------------
@metric("micro_f1", kinds=("multilabel",))
def micro_f1(p: Predictions) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(p.gold, p.predicted(), average="micro", zero_division=0))


@metric("subset_accuracy", kinds=("multilabel",))
def subset_accuracy(p: Predictions) -> float:
    """Share of rows whose whole label set is predicted exactly."""
    return float((p.predicted() == p.gold).all(axis=1).mean())


# ---- regression -------------------------------------------------------------------------------
@metric("mse", higher_is_better=False, kinds=("values",))
def mse(p: Predictions) -> float:
    return float(((p.scores - p.gold) ** 2).mean())


@metric("rmse", higher_is_better=False, kinds=("values",))
def rmse(p: Predictions) -> float:
    return math.sqrt(mse(p))


@metric("mae", higher_is_better=False, kinds=("values",))
def mae(p: Predictions) -> float:
    return float(np.abs(p.scores - p.gold).mean())


@metric("r2", kinds=("values",))
def r2(p: Predictions) -> float:
    """1 - SSE/SST; 0 when the targets do not vary (nothing to explain)."""
    var = float(((p.gold - p.gold.mean()) ** 2).mean())
    return 1.0 - mse(p) / var if var > 0 else 0.0


@metric("pearson", kinds=("values",))
def pearson(p: Predictions) -> float:
    """Linear correlation; 0 when either side is constant (undefined otherwise)."""
    if np.std(p.gold) == 0 or np.std(p.scores) == 0:
        return 0.0
    return float(np.corrcoef(p.gold, p.scores)[0, 1])


@metric("spearman", kinds=("values",))
def spearman(p: Predictions) -> float:
    """Rank correlation (scipy); 0 when either side is constant."""
    from scipy.stats import spearmanr

    if np.std(p.gold) == 0 or np.std(p.scores) == 0:
        return 0.0
    return float(spearmanr(p.gold, p.scores).statistic)


# ---- language modelling -----------------------------------------------------------------------
@metric("perplexity", higher_is_better=False, kinds=("tokens",))
def perplexity(p: Predictions) -> float:
    """exp(summed NLL / scored tokens) over the rows."""
    return perplexity_from_losses(float(p.scores.sum()), max(int(p.gold.sum()), 1))
