"""A classic baseline for every evaluation: TF-IDF + a linear model on the run's own splits.

Fine-tuning is only worth its cost when it beats what a bag of words and a linear model reach in
seconds, so the evaluate stage fits one (scikit-learn) on the train split, tunes its regularisation
on validation by the task's default validation metric, and scores it on exactly the rows the tuned
model is scored on. Its :class:`Predictions` have the task's kind, so the same metric code and the
same bootstrap intervals apply, and a paired bootstrap compares the two models row by row.

- ``classification``: logistic regression (class probabilities, so ECE and Brier exist);
- ``multilabel``: one-vs-rest logistic regression, decision threshold tuned on validation micro-F1
  as the task tunes its own;
- ``regression``: ridge regression.
Other tasks (sft, lm) have no baseline.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions, higher_is_better, value
from tunelab.tasks import Task

C_GRID = (0.1, 1.0, 10.0, 100.0)  # logistic regression: inverse regularisation strength
ALPHA_GRID = (0.1, 1.0, 10.0, 100.0)  # ridge: regularisation strength
MIN_DF = 2  # a word (or pair) seen in one train text only says nothing about the others
MAX_FEATURES = 200_000  # caps memory on large corpora; the most frequent n-grams are kept
HOLDOUT = 0.2  # share of train that tunes the grid when validation is missing or is the scored split
KINDS = {"classification": "labels", "multilabel": "multilabel", "regression": "values"}
MODELS = {
    "labels": ("logistic regression", "C"),
    "multilabel": ("one-vs-rest logistic regression", "C"),
    "values": ("ridge regression", "alpha"),
}


@dataclass
class Baseline:
    """The baseline's predictions on the scored rows and how it was fitted (``info``, JSON-ready)."""

    predictions: Predictions
    info: dict[str, Any] = field(default_factory=dict)


def has_baseline(task: Task) -> bool:
    return task.name in KINDS


def fit_baseline(
    task: Task,
    recipe: Recipe,
    train: list[dict[str, Any]],
    validation: list[dict[str, Any]],
    scored: list[dict[str, Any]],
    labels: list[str] | None,
) -> Baseline:
    """Fit on ``train``, tune on ``validation`` (a seeded hold-out of train when it is empty), predict
    ``scored`` in its row order. Raises ValueError when the data cannot fit one (a single class)."""
    kind = KINDS[task.name]
    seed = recipe.run.seed
    start = time.perf_counter()
    y_train = targets(kind, train, task, recipe, labels)
    y_scored = targets(kind, scored, task, recipe, labels)
    tuned_on = "validation"
    if validation:
        tune_train, y_tune_train, tune_val = train, y_train, validation
        y_tune_val = targets(kind, validation, task, recipe, labels)
    else:
        tuned_on = f"a {HOLDOUT:.0%} hold-out of train"
        keep, held = _holdout(len(train), seed)
        tune_train, y_tune_train = [train[i] for i in keep], y_train[keep]
        tune_val, y_tune_val = [train[i] for i in held], y_train[held]
    fits = [_fit(kind, strength, tune_train, y_tune_train, seed, labels) for strength in _grid(kind)]
    metric = task.default_metric
    scores, losses = {}, {}
    for fit in fits:
        fit.tune_threshold(tune_val, y_tune_val)
        preds = fit.predictions(tune_val, y_tune_val)
        scores[fit.strength], losses[fit.strength] = value(metric, preds), float(task.losses_of(preds).mean())
    sign = 1.0 if higher_is_better(metric) else -1.0
    # ties on the metric (accuracy on a small validation split often ties) go to the lower validation
    # loss, a proper score: "the most regularised" would keep a C whose probabilities all sit near 0.5
    best = max(fits, key=lambda fit: (sign * scores[fit.strength], -losses[fit.strength]))
    if tune_train is not train:  # refit on the whole train split with the chosen strength
        threshold = best.threshold
        best = _fit(kind, best.strength, train, y_train, seed, labels)
        best.threshold = threshold
    preds = best.predictions(scored, y_scored)
    name, param = MODELS[kind]
    info: dict[str, Any] = {
        "model": f"TF-IDF (word 1-2 grams, sublinear tf, min_df {best.min_df}) + {name}",
        param: best.strength,
        "grid": {str(k): v for k, v in scores.items()},
        "grid_loss": {str(k): v for k, v in losses.items()},  # the tie-breaker
        "selected_by": f"{metric} on {tuned_on}",
        "vocabulary": best.vocabulary,
        "train_rows": len(train),
        "fit_seconds": round(time.perf_counter() - start, 3),
        "seed": seed,
    }
    if kind == "multilabel":
        info["threshold"] = best.threshold
    return Baseline(preds, info)


def targets(kind: str, rows: list[dict[str, Any]], task: Task, recipe: Recipe, labels) -> np.ndarray:
    """The gold answers of ``rows`` as the task encodes them: class ids, 0/1 vectors or floats."""
    gold = task.targets(rows, recipe, labels)
    if kind == "multilabel":
        return np.asarray(gold, dtype=np.int64).reshape(len(rows), len(labels or []))
    return np.asarray(gold, dtype=np.int64 if kind == "labels" else np.float64)


def _grid(kind: str) -> tuple[float, ...]:
    return ALPHA_GRID if kind == "values" else C_GRID


def _holdout(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n < 5:
        raise ValueError(f"{n} train rows are too few to tune a baseline without a validation split")
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, round(n * HOLDOUT))
    return np.sort(order[cut:]), np.sort(order[:cut])


@dataclass
class _Fitted:
    """One vectoriser + linear model at one regularisation strength."""

    kind: str
    strength: float
    vectorizer: Any
    model: Any
    n_labels: int
    labels: list[str] | None
    min_df: int
    threshold: float = 0.5

    @property
    def vocabulary(self) -> int:
        return len(self.vectorizer.vocabulary_)

    def scores(self, rows: list[dict[str, Any]]) -> np.ndarray:
        X = self.vectorizer.transform([r["text"] for r in rows])
        if self.kind == "values":
            return np.asarray(self.model.predict(X), dtype=np.float64).reshape(-1)
        probs = np.asarray(self.model.predict_proba(X), dtype=np.float64)
        if self.kind == "multilabel":
            return probs.reshape(len(rows), self.n_labels)
        full = np.zeros((len(rows), self.n_labels))  # a class absent from the fit rows gets 0
        full[:, self.model.classes_] = probs
        return full

    def predictions(self, rows: list[dict[str, Any]], gold: np.ndarray) -> Predictions:
        return Predictions(self.kind, gold, self.scores(rows), labels=self.labels, threshold=self.threshold)

    def tune_threshold(self, rows: list[dict[str, Any]], gold: np.ndarray) -> None:
        """Multilabel: the validation micro-F1 threshold, from the grid the task itself uses."""
        if self.kind == "multilabel":
            from tunelab.tasks.multilabel import best_threshold

            self.threshold = best_threshold(gold, self.scores(rows))


def _fit(kind: str, strength: float, rows, y: np.ndarray, seed: int, labels) -> _Fitted:
    from sklearn.exceptions import ConvergenceWarning

    vectorizer, X, min_df = _vectorize([r["text"] for r in rows])
    if kind == "values":
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=strength, random_state=seed)
    else:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=strength, max_iter=2000, random_state=seed)
        if kind == "multilabel":
            from sklearn.multiclass import OneVsRestClassifier

            model = OneVsRestClassifier(model)
    with warnings.catch_warnings():
        # a label present in every (or no) train row gets a constant predictor: that is the answer
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model.fit(X, y)
    n_labels = len(labels) if labels else 1
    return _Fitted(kind, strength, vectorizer, model, n_labels, list(labels) if labels else None, min_df)


def _vectorize(texts: list[str]):
    """TF-IDF over word 1-2 grams with sublinear tf; min_df 1 when min_df 2 leaves no vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    for min_df in (MIN_DF, 1):
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, max_features=MAX_FEATURES, dtype=np.float32
        )
        try:
            return vectorizer, vectorizer.fit_transform(texts), min_df
        except ValueError:  # "empty vocabulary" (or max_df < min_df on a handful of texts)
            if min_df == 1:
                raise
    raise AssertionError("unreachable")
