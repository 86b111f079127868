"""Regression: one number per text (a score, a rating), from the ``label`` column; MSE loss by default.

The model is a sequence classifier with ``num_labels=1`` (``problem_type: regression``), so with the
default head it still loads with plain transformers. Labels are floats from the data stage on
(``parse_label``): a value that is not a finite number goes to quarantine with the value it got.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions
from tunelab.registry import TASKS
from tunelab.tasks.base import Scored
from tunelab.tasks.classification import ClassificationTask


@TASKS.register("regression")
class RegressionTask(ClassificationTask):
    """Reuses the classification model loading (heads, tuned reload) and padding; all else is its own."""

    name = "regression"
    has_labels = False
    headline = ("mae", "rmse", "r2", "pearson", "spearman")
    default_metric = "rmse"
    validation_metrics = ("rmse", "mae", "r2")
    rank_metric = "probe_r2"
    base_note = "base = the pretrained encoder with a new, untrained regression head"
    loss_kind = "regression"
    default_loss = "mse"
    label_dtype = torch.float32

    # data ------------------------------------------------------------------------------------
    def parse_label(self, value: Any, recipe: Recipe | None = None) -> tuple[Any, str | None]:
        """A float from an int, a float or a numeric string; NaN, inf and anything else is refused."""
        shown = repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
        if isinstance(value, bool):  # bool is an int subclass, but True is no target
            return None, f"label {shown} is not a number (regression)"
        if isinstance(value, int | float):
            try:
                number = float(value)
            except OverflowError:  # an int with hundreds of digits
                return None, f"label {str(value)[:20]}... is too large for a number (regression)"
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return None, f"label {value[:40]!r} is not a number (regression)"
        else:
            return None, f"label {shown[:60]} is not a number (regression)"
        if not math.isfinite(number):
            return None, f"label {shown} is not a finite number (regression)"
        return number, None

    def label_vocabulary(self, labels) -> None:
        return None

    # model -----------------------------------------------------------------------------------
    def load_base(self, recipe: Recipe, labels: list[str] | None = None):
        return self.load_with_head(recipe, num_labels=1, problem_type="regression")

    def encode(self, rows, tokenizer, recipe: Recipe, labels=None) -> list[dict[str, Any]]:
        return self.text_features(rows, self.targets(rows, recipe, labels), tokenizer, recipe)

    def targets(self, rows, recipe: Recipe, labels=None) -> list[Any]:
        """Each row's number."""
        out = []
        for i, r in enumerate(rows):
            y, why = self.parse_label(r["label"], recipe)
            if why:
                raise ValueError(f"row {i}: {why}")
            out.append(y)
        return out

    def loss_data(self, features, labels):
        from tunelab.tasks.losses import LossData

        return LossData()

    @torch.no_grad()
    def predict(self, model, batches) -> tuple[float, Predictions]:
        """Mean squared error and the predicted values over ``batches``; the windows of a row
        (``model.long_text: chunk``) are pooled into its value."""
        from tunelab.tasks.windows import row_outputs

        model.eval()
        out, gold = row_outputs(self.forward, model, batches, self.pooling)
        y = gold.numpy().astype(np.float64).reshape(-1)
        p = out.numpy().astype(np.float64).reshape(-1)
        return float(((p - y) ** 2).mean()) if len(y) else 0.0, Predictions("values", y, p)

    def losses_of(self, preds: Predictions) -> np.ndarray:
        return (preds.scores - preds.gold) ** 2

    # evaluation ------------------------------------------------------------------------------
    def details(self, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
        """The spread of targets and predictions: a model that predicts the mean shows it here."""

        def spread(x: np.ndarray) -> dict[str, float]:
            return {k: float(getattr(np, k)(x)) for k in ("mean", "std", "min", "max")}

        return {"target": spread(preds.gold), "prediction": spread(preds.scores)} if len(preds) else {}

    def prediction_rows(self, rows, preds: Predictions) -> list[dict[str, Any]]:
        return [
            {"text": r["text"], "target": float(y), "prediction": round(float(p), 6)}
            for r, y, p in zip(rows, preds.gold, preds.scores, strict=True)
        ]

    def rank(self, recipe: Recipe, train, val, labels=None) -> Scored:
        """Validation R² of a ridge probe on frozen mean-pooled features."""
        from sklearn.metrics import r2_score

        from tunelab.models.probe import probe_scores

        y_train = np.asarray([float(r["label"]) for r in train])
        y_val = np.asarray([float(r["label"]) for r in val])
        if np.ptp(y_train) == 0:
            raise ValueError("the train sample holds one target value only; raise search.rank_train_rows")
        pred, parameters, tokens, seconds = probe_scores(recipe, train, val, y_train, "regressor")
        return Scored(float(r2_score(y_val, pred)), parameters, tokens, seconds)

