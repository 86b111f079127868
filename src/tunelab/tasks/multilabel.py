"""Multi-label classification: each text carries a set of labels (topics, tags); a sigmoid per label.

The label column holds a list of names, or one string split on ``data.label_delimiter``; from the data
stage on a label is a sorted tuple of names, and ``data/labels.json`` is the union seen in train. The
model is a sequence classifier with ``problem_type: multi_label_classification`` (plain transformers
loads it) trained with ``bce``. A label is predicted when its probability reaches the decision
threshold: 0.5 while training, then the one that maximises validation micro-F1 (``after_fit``), which
the train stage saves in ``model/tunelab_model.json`` and :meth:`MultiLabelTask.load_tuned` reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions
from tunelab.registry import TASKS
from tunelab.tasks.base import Scored, saved_model_info
from tunelab.tasks.classification import ClassificationTask

THRESHOLD_ATTR = "tunelab_threshold"  # set on a loaded model, so its predictions use its own threshold
DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95


@TASKS.register("multilabel")
class MultiLabelTask(ClassificationTask):
    """Reuses the classification model loading (heads, tuned reload) and padding; all else is its own."""

    name = "multilabel"
    has_labels = True
    headline = ("micro_f1", "macro_f1", "subset_accuracy")
    default_metric = "micro_f1"
    validation_metrics = ("micro_f1", "macro_f1")
    rank_metric = "probe_micro_f1"
    base_note = "base = the pretrained encoder with a new, untrained head, at threshold 0.5"
    loss_kind = "multilabel"
    default_loss = "bce"
    label_dtype = torch.float32

    # data ------------------------------------------------------------------------------------
    def parse_label(self, value: Any, recipe: Recipe | None = None) -> tuple[Any, str | None]:
        """A sorted tuple of label names from a list, or a string split on ``data.label_delimiter``."""
        delimiter = recipe.data.label_delimiter if recipe is not None else None
        if hasattr(value, "tolist") and not isinstance(value, str):  # parquet / pandas arrays
            value = value.tolist()
        if isinstance(value, list | tuple):
            bad = [v for v in value if isinstance(v, bool) or not isinstance(v, str | int)]
            if bad:
                return None, (
                    f"label set members must be strings, got {type(bad[0]).__name__} {str(bad[0])[:40]!r}"
                )
            names = [str(v) for v in value]
        elif isinstance(value, str):
            names = value.split(delimiter) if delimiter else [value]
        elif isinstance(value, int) and not isinstance(value, bool):
            names = [str(value)]
        else:
            how = "a list of strings" + (f" or a {delimiter!r}-delimited string" if delimiter else "")
            return None, f"label must be {how}, got {type(value).__name__} {str(value)[:40]!r}"
        label = tuple(sorted({n.strip() for n in names if n.strip()}))
        return (label, None) if label else (None, "empty label set")

    def label_vocabulary(self, labels) -> list[str]:
        return sorted({name for label in labels for name in _names(label)})

    # model -----------------------------------------------------------------------------------
    def load_base(self, recipe: Recipe, labels: list[str] | None):
        if not labels:
            raise ValueError("multilabel needs the label list (data/labels.json)")
        return self.load_with_head(
            recipe,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
            problem_type="multi_label_classification",
        )

    def load_tuned(self, model_dir: Path, recipe: Recipe, labels: list[str] | None):
        """The tuned model, carrying the decision threshold the train stage saved with it."""
        model, tokenizer = super().load_tuned(model_dir, recipe, labels)
        setattr(model, THRESHOLD_ATTR, saved_threshold(model_dir))
        return model, tokenizer

    def encode(self, rows, tokenizer, recipe: Recipe, labels) -> list[dict[str, Any]]:
        """Token ids and a 0/1 vector over ``labels`` per row."""
        return self.text_features(rows, self.targets(rows, recipe, labels), tokenizer, recipe)

    def targets(self, rows, recipe: Recipe, labels) -> list[Any]:
        """A 0/1 list over ``labels`` per row."""
        ids_of = {lab: i for i, lab in enumerate(labels or [])}
        unknown = sorted({n for r in rows for n in _names(r["label"])} - set(ids_of))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the trained labels {labels}")
        return [multi_hot(_names(r["label"]), ids_of).tolist() for r in rows]

    def loss_data(self, features, labels):
        from tunelab.tasks.losses import LossData

        return LossData()

    @torch.no_grad()
    def predict(self, model, batches) -> tuple[float, Predictions]:
        """Mean binary cross-entropy and per-label probabilities, decided at the model's threshold; the
        windows of a row (``model.long_text: chunk``) are pooled into its logits first."""
        from tunelab.tasks.windows import row_outputs

        model.eval()
        logits, y = row_outputs(self.forward, model, batches, self.pooling)
        threshold = float(getattr(model, THRESHOLD_ATTR, DEFAULT_THRESHOLD))
        if not len(y):
            empty = np.zeros((0, 0), np.int64)
            return 0.0, Predictions("multilabel", empty, empty.astype(np.float64), threshold=threshold)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y.float(), reduction="none")
        total = bce.mean(1).double().sum().item()  # each row's mean over labels, as the bce loss takes it
        g, p = y.numpy().astype(np.int64), torch.sigmoid(logits).numpy().astype(np.float64)
        return total / len(g), Predictions("multilabel", g, p, threshold=threshold)

    def losses_of(self, preds: Predictions) -> np.ndarray:
        """Per row: binary cross-entropy averaged over labels."""
        p = np.clip(preds.scores, 1e-12, 1 - 1e-12)
        return -(preds.gold * np.log(p) + (1 - preds.gold) * np.log(1 - p)).mean(axis=1)

    def after_fit(self, model, val_features, tokenizer, recipe: Recipe) -> dict[str, Any]:
        """The threshold in 0.05..0.95 with the best validation micro-F1 (0.5 without validation rows)."""
        from tunelab.batching import eval_batches

        threshold = DEFAULT_THRESHOLD
        if val_features:
            batches = eval_batches(val_features, self, tokenizer, recipe.train.eval_batch_size)
            _, preds = self.predict(model, batches)
            threshold = best_threshold(preds.gold, preds.scores)
        setattr(model, THRESHOLD_ATTR, threshold)
        return {"threshold": threshold}

    # evaluation ------------------------------------------------------------------------------
    def details(self, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
        """The threshold used and precision, recall, F1 and support per label."""
        from sklearn.metrics import precision_recall_fscore_support

        names = preds.labels or [str(i) for i in range(preds.scores.shape[1])]
        prec, rec, f1, support = precision_recall_fscore_support(
            preds.gold, preds.predicted(), average=None, labels=list(range(len(names))), zero_division=0
        )
        return {
            "threshold": preds.threshold,
            "labels": list(names),
            "per_label": {
                name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                       "support": int(support[i])}
                for i, name in enumerate(names)
            },
        }

    def prediction_rows(self, rows, preds: Predictions) -> list[dict[str, Any]]:
        names = preds.labels or [str(i) for i in range(preds.scores.shape[1])]
        return [
            {
                "text": r["text"],
                "labels": sorted(set(_names(r["label"]))),
                "predicted": [names[j] for j in np.flatnonzero(decided)],
                "probabilities": {n: round(float(x), 6) for n, x in zip(names, p, strict=True)},
            }
            for r, decided, p in zip(rows, preds.predicted(), preds.scores, strict=True)
        ]

    def rank(self, recipe: Recipe, train, val, labels) -> Scored:
        """Validation micro-F1 (at 0.5) of one logistic probe per label on frozen mean-pooled features."""
        from sklearn.metrics import f1_score

        from tunelab.models.probe import probe_scores

        ids_of = {lab: i for i, lab in enumerate(labels or [])}
        y_train = np.stack([multi_hot(_names(r["label"]), ids_of) for r in train])
        y_val = np.stack([multi_hot(_names(r["label"]), ids_of) for r in val])
        if not (y_train.any(axis=0) & ~y_train.all(axis=0)).any():
            raise ValueError(
                "no label both occurs and is missing in the train sample; raise search.rank_train_rows"
            )
        probs, parameters, tokens, seconds = probe_scores(recipe, train, val, y_train, "multilabel")
        score = f1_score(y_val, (np.asarray(probs) >= DEFAULT_THRESHOLD).astype(np.int64), average="micro",
                         zero_division=0)
        return Scored(float(score), parameters, tokens, seconds)


def _names(label: Any) -> tuple[str, ...]:
    """A row's label names: a JSON list from the data files, a tuple in memory, or one string."""
    if isinstance(label, str):
        return (label,)
    return tuple(label)


def multi_hot(names: tuple[str, ...], ids_of: dict[str, int]) -> np.ndarray:
    """0/1 vector over the vocabulary; names outside it are left out (the caller checks for them)."""
    y = np.zeros(len(ids_of), dtype=np.int64)
    for n in names:
        if n in ids_of:
            y[ids_of[n]] = 1
    return y


def best_threshold(gold: np.ndarray, probs: np.ndarray) -> float:
    """The grid threshold with the highest micro-F1; ties go to the one nearest 0.5."""
    from sklearn.metrics import f1_score

    scored = [
        (f1_score(gold, (probs >= t).astype(np.int64), average="micro", zero_division=0), -abs(t - 0.5), t)
        for t in THRESHOLD_GRID
    ]
    return float(max(scored)[2])


def saved_threshold(model_dir: Path) -> float:
    """The threshold in ``model_dir/tunelab_model.json`` (0.5 for a model saved without one)."""
    return float(saved_model_info(model_dir).get("threshold", DEFAULT_THRESHOLD))
