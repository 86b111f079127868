"""Regression: one number per text (a score, a rating), from the ``label`` column; MSE loss by default.

The model is a sequence classifier with ``num_labels=1`` (``problem_type: regression``), so with the
default head it still loads with plain transformers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.tasks.base import TASKS
from tunelab.tasks.classification import ClassificationTask


@TASKS.register("regression")
class RegressionTask(ClassificationTask):
    name = "regression"
    default_metric = "mse"
    loss_kind = "regression"
    default_loss = "mse"
    label_dtype = torch.float32

    @staticmethod
    def greater_is_better(metric: str) -> bool:
        return metric == "r2"

    def load_base(self, recipe: Recipe, labels: list[str] | None = None):
        return self.load_with_head(recipe, num_labels=1, problem_type="regression")

    def encode(self, rows, tokenizer, recipe: Recipe, labels=None) -> list[dict[str, Any]]:
        targets = []
        for i, r in enumerate(rows):
            try:
                targets.append(float(r["label"]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"row {i}: label {r['label']!r} is not a number (regression)") from exc
        enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=recipe.model.max_length)
        return [{"input_ids": ids, "labels": y} for ids, y in zip(enc["input_ids"], targets, strict=True)]

    def loss_data(self, features, labels):
        from tunelab.tasks.losses import LossData

        return LossData()

    @torch.no_grad()
    def predict_values(self, model, batches) -> tuple[np.ndarray, np.ndarray]:
        """(targets, predictions) over ``batches``."""
        model.eval()
        gold, pred = [], []
        for batch in batches:
            pred.append(self.forward(model, batch).logits.float().reshape(-1).numpy())
            gold.append(batch["labels"].numpy())
        return np.concatenate(gold), np.concatenate(pred)

    @torch.no_grad()
    def example_losses(self, model, batches) -> list[float]:
        y, p = self.predict_values(model, batches)
        return ((p - y) ** 2).tolist()

    def validate(self, model, batches) -> dict[str, float]:
        y, p = self.predict_values(model, batches)
        figures = scores(y, p)
        return {"loss": figures["mse"], **figures}

    def evaluate(self, model, tokenizer, rows, recipe: Recipe, labels=None) -> dict[str, Any]:
        from tunelab.batching import eval_batches
        from tunelab.metrics.bootstrap import bootstrap_mean

        feats = self.encode(rows, tokenizer, recipe)
        y, p = self.predict_values(model, eval_batches(feats, self, tokenizer, recipe.train.eval_batch_size))
        ev = recipe.evaluate
        kw = {"bootstrap_samples": ev.bootstrap_samples, "confidence": ev.confidence, "seed": recipe.run.seed}
        return {"mse": bootstrap_mean((p - y) ** 2, **kw), "mae": bootstrap_mean(np.abs(p - y), **kw),
                "r2": scores(y, p)["r2"], "n_examples": len(rows)}


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Mean squared error, mean absolute error and R² of predictions ``p`` for targets ``y``."""
    mse = float(((p - y) ** 2).mean())
    var = float(((y - y.mean()) ** 2).mean())
    return {"mse": mse, "mae": float(np.abs(p - y).mean()), "r2": 1.0 - mse / var if var > 0 else 0.0}
