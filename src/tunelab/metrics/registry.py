"""Metrics by name, each with its direction: the one place that says whether higher is better.

A metric reads a :class:`Predictions` (what a task's model produced on some rows) and returns one
number. Training (``train.metric_for_best``), evaluation (``evaluate.metrics``), search and model
ranking all look metrics up here, so a user's own metric, given as a dotted path
(``mypkg.metrics:cost``, a function of a ``Predictions`` with an optional ``higher_is_better``
attribute), can pick the best checkpoint and headline the evaluation like a built-in one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from tunelab.metrics.bootstrap import Interval, bootstrap_interval, bootstrap_replicates, make_diff
from tunelab.registry import Registry, UnknownPluginError

KINDS = ("labels", "values", "multilabel", "tokens")


@dataclass(frozen=True)
class Predictions:
    """A model's outputs on rows, aligned with the gold answers (row i of each array is example i).

    ``kind`` says how to read the arrays:
    - ``labels``: ``gold`` class ids [n], ``scores`` class probabilities [n, k];
    - ``values``: ``gold`` targets [n], ``scores`` predicted values [n];
    - ``multilabel``: ``gold`` 0/1 [n, k], ``scores`` per-label probabilities [n, k], ``threshold``;
    - ``tokens``: ``gold`` scored-token counts [n], ``scores`` summed negative log-likelihood [n].
    """

    kind: str
    gold: np.ndarray
    scores: np.ndarray
    labels: list[str] | None = None
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown prediction kind {self.kind!r}; known: {', '.join(KINDS)}")
        if len(self.gold) != len(self.scores):
            raise ValueError(f"{len(self.gold)} gold rows but {len(self.scores)} predicted rows")

    def __len__(self) -> int:
        return len(self.gold)

    def subset(self, idx: np.ndarray) -> Predictions:
        return replace(self, gold=self.gold[idx], scores=self.scores[idx])

    def predicted(self) -> np.ndarray:
        """Class ids (labels), values, or 0/1 decisions at the threshold (multilabel)."""
        if self.kind == "labels":
            return self.scores.argmax(-1)
        if self.kind == "multilabel":
            return (self.scores >= self.threshold).astype(np.int64)
        return self.scores


@dataclass(frozen=True)
class Metric:
    """A named figure. ``fn`` is None for figures a task reports itself (validation loss, ROUGE-L)."""

    name: str
    higher_is_better: bool
    fn: Callable[[Predictions], float] | None = None
    kinds: tuple[str, ...] = ()  # the prediction kinds it can score; empty: any


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str, higher_is_better: bool = True, kinds: tuple[str, ...] = ()):
    """Decorator registering ``fn(predictions) -> float`` as a metric."""

    def add(fn: Callable[[Predictions], float]) -> Callable[[Predictions], float]:
        METRICS.register(name)(Metric(name, higher_is_better, fn, kinds))
        return fn

    return add


def get_metric(name: str) -> Metric:
    """A registered metric, or a user's function given by dotted path."""
    _builtins()
    found = METRICS.get(name)
    if isinstance(found, Metric):
        return found
    if not callable(found):
        raise UnknownPluginError(f"metric {name!r} is not a function of a Predictions")
    return Metric(name, bool(getattr(found, "higher_is_better", True)), found)


def higher_is_better(name: str) -> bool:
    return get_metric(name).higher_is_better


def value(name: str, preds: Predictions) -> float:
    """The metric on ``preds``; a clear error when it cannot score this kind of prediction."""
    m = get_metric(name)
    if m.fn is None:
        raise ValueError(f"metric {name!r} is reported by the task itself, not computed from predictions")
    if m.kinds and preds.kind not in m.kinds:
        raise ValueError(f"metric {name!r} scores {'/'.join(m.kinds)} predictions, not {preds.kind}")
    return float(m.fn(preds))


def interval(name: str, preds: Predictions, bootstrap_samples: int, confidence: float, seed: int) -> Interval:
    """The metric with a percentile bootstrap interval over rows."""
    return bootstrap_interval(
        _on_arrays(name, preds),
        preds.gold,
        preds.scores,
        bootstrap_samples=bootstrap_samples,
        confidence=confidence,
        seed=seed,
    )


def paired_difference(
    name: str, base: Predictions, tuned: Predictions, bootstrap_samples: int, confidence: float, seed: int
) -> Interval:
    """tuned - base on the same rows, both resampled together (a paired bootstrap)."""
    if len(base) != len(tuned):
        raise ValueError("a paired comparison needs the same rows for both models")
    # the same seed gives both sides the same resampled rows; each keeps its own labels and threshold
    reps = [
        bootstrap_replicates(
            _on_arrays(name, p), p.gold, p.scores, bootstrap_samples=bootstrap_samples, seed=seed
        )
        for p in (base, tuned)
    ]
    out = make_diff(value(name, base), value(name, tuned), *reps, confidence)
    out["higher_is_better"] = higher_is_better(name)
    return out


def _on_arrays(name: str, like: Predictions) -> Callable[[np.ndarray, np.ndarray], float]:
    """The metric as a function of (gold, scores) rows, which is what the bootstrap resamples."""
    return lambda gold, scores: value(name, replace(like, gold=gold, scores=scores))


def _builtins() -> None:
    from tunelab.metrics import builtin  # noqa: F401  (registers the built-in metrics)
