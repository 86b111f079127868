"""Sequence classification: an encoder (or decoder) with a classification head; labels from a column.

``model.head.type: auto`` keeps the model's own transformers head (the result loads with plain
transformers); ``linear`` / ``mlp`` put a tunelab head over a chosen pooling (see ``models/heads.py``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions
from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path
from tunelab.registry import TASKS
from tunelab.tasks.base import Scored, Task
from tunelab.tasks.loading import on_device, pretrained_config

log = logging.getLogger("tunelab")


@TASKS.register("classification")
class ClassificationTask(Task):
    name = "classification"
    has_labels = True
    headline = ("accuracy", "macro_f1", "ece")
    default_metric = "accuracy"
    validation_metrics = ("accuracy", "macro_f1")
    rank_metric = "probe_accuracy"
    base_note = "base = the pretrained encoder with a new, untrained head (chance level)"
    peft_task_type = "SEQ_CLS"
    label_dtype = torch.long

    @staticmethod
    def auto_class():
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def load_base(self, recipe: Recipe, labels: list[str] | None):
        if not labels:
            raise ValueError("classification needs the label list (data/labels.json)")
        return self.load_with_head(
            recipe,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
        )

    def load_with_head(self, recipe: Recipe, **config_overrides: Any):
        """The pretrained model with the recipe's head (``model.head``) and dropout overrides."""
        from tunelab.models.heads import build_headed

        path = resolve_model_path(recipe.model)
        tokenizer = load_tokenizer(recipe.model, path)
        config = pretrained_config(recipe.model, path, **config_overrides)
        head = recipe.model.head
        if config.pad_token_id is None:  # decoders need it to find the last real token
            config.pad_token_id = tokenizer.pad_token_id
        if head.type == "auto":
            if head.dropout is not None:
                if not hasattr(config, "classifier_dropout"):
                    raise ValueError(
                        f"model.head.dropout: a {config.model_type} head has no dropout setting; "
                        "use a tunelab head (type: linear) or remove it"
                    )
                config.classifier_dropout = head.dropout
            loaded = self.auto_class().from_pretrained(
                path, config=config, output_loading_info=True, **load_kwargs(recipe.model)
            )
            model, info = loaded if isinstance(loaded, tuple) else (loaded, {})
            prefix = f"{getattr(model, 'base_model_prefix', '')}."
            new = any(not str(k).startswith(prefix) for k in info.get("missing_keys") or ())
        else:
            model = build_headed(path, config, head, config.num_labels, **load_kwargs(recipe.model))
            new = True
        if new:  # in place of transformers' load report (the CLI silences it): one line of our own
            log.info("new %s head: %s", self.name, _head_outputs(config, self.has_labels))
        return model, tokenizer

    def load_tuned(self, model_dir: Path, recipe: Recipe, labels: list[str] | None):
        from tunelab.models.heads import is_headed, load_headed

        if not is_headed(model_dir):
            return super().load_tuned(model_dir, recipe, labels)
        from transformers import AutoTokenizer

        model = load_headed(model_dir).eval()
        return model, AutoTokenizer.from_pretrained(str(model_dir))

    def parse_label(self, value: Any, recipe: Recipe) -> tuple[Any, str | None]:
        """A class name. An integer names one class however it comes: ``1``, ``1.0``, ``np.int64(1)``,
        ``"1"`` and ``"1.0"`` (a numeric CSV column, read as text) are all the class ``"1"``."""
        if isinstance(value, bool | np.bool_):
            return str(bool(value)).lower(), None
        if isinstance(value, int | np.integer):
            return str(int(value)), None
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value)), None  # 1.0 from a numeric column means label "1"
        if isinstance(value, str):
            whole, dot, fraction = value.strip().partition(".")
            digits = whole[1:] if whole[:1] in ("+", "-") else whole
            if dot and fraction and not fraction.strip("0") and digits.isascii() and digits.isdigit():
                return str(int(whole)), None  # "1.0" / "-2.00" is the integer class it writes
            return value, None
        return (
            None,
            f"label must be a single string or integer, got {type(value).__name__} {str(value)[:40]!r}",
        )

    def label_vocabulary(self, labels) -> list[str]:
        return sorted(set(labels))

    def encode(self, rows, tokenizer, recipe: Recipe, labels) -> list[dict[str, Any]]:
        ids_of = {lab: i for i, lab in enumerate(labels)}
        unknown = sorted({str(r["label"]) for r in rows} - set(ids_of))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the trained labels {labels}")
        enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=recipe.model.max_length)
        return [
            {"input_ids": ids, "labels": ids_of[r["label"]]}
            for ids, r in zip(enc["input_ids"], rows, strict=True)
        ]

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad(
            [{"input_ids": f["input_ids"]} for f in features], padding=True, return_tensors="pt"
        )
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=self.label_dtype)
        return dict(batch)

    def loss_data(self, features, labels):
        from tunelab.tasks.losses import LossData

        counts = Counter(f["labels"] for f in features)
        n_labels = len(labels) if labels else max(counts, default=-1) + 1
        return LossData(label_counts=[counts.get(i, 0) for i in range(n_labels)])

    @torch.no_grad()
    def predict(self, model, batches: Iterable[dict[str, torch.Tensor]]) -> tuple[float, Predictions]:
        """Mean cross-entropy and class probabilities over ``batches``."""
        model.eval()
        losses, gold, probs = [], [], []
        for batch in batches:
            batch = on_device(model, batch)
            logits = self.forward(model, batch).logits.float()
            losses.append(torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum").item())
            gold.append(batch["labels"].cpu().numpy())
            probs.append(torch.softmax(logits, dim=-1).cpu().numpy())
        y = np.concatenate(gold)
        return float(sum(losses) / max(len(y), 1)), Predictions("labels", y, np.concatenate(probs))

    def losses_of(self, preds: Predictions) -> np.ndarray:
        return -np.log(np.clip(preds.scores[np.arange(len(preds)), preds.gold], 1e-12, 1.0))

    def details(self, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
        from tunelab.metrics.classification import classification_metrics

        ev = recipe.evaluate
        labels = preds.labels or [str(i) for i in range(preds.scores.shape[1])]
        return classification_metrics(
            preds.gold.tolist(),
            preds.predicted().tolist(),
            probs=preds.scores,
            labels=labels,
            bootstrap_samples=ev.bootstrap_samples,
            confidence=ev.confidence,
            seed=recipe.run.seed,
        )

    def prediction_rows(self, rows, preds: Predictions) -> list[dict[str, Any]]:
        names = preds.labels or []
        return [
            {
                "text": r["text"],
                "label": r["label"],
                "predicted": names[k],
                "probability": round(float(p[k]), 6),
            }
            for r, k, p in zip(rows, preds.predicted().tolist(), preds.scores, strict=True)
        ]

    def rank(self, recipe: Recipe, train, val, labels) -> Scored:
        """Validation accuracy of a linear probe on frozen mean-pooled features."""
        from tunelab.models.probe import probe_scores

        ids_of = {lab: i for i, lab in enumerate(labels or [])}
        if len({r["label"] for r in train}) < 2:
            raise ValueError("the train sample holds one label only; raise search.rank_train_rows")
        y_train = [ids_of[r["label"]] for r in train]
        y_val = np.asarray([ids_of[r["label"]] for r in val])
        pred, parameters, tokens, seconds = probe_scores(recipe, train, val, y_train, "classifier")
        return Scored(float((pred == y_val).mean()), parameters, tokens, seconds)


def _head_outputs(config, has_labels: bool) -> str:
    """``2 labels (fresh, rotten)``, or ``1 output`` for a head without label names."""
    n = int(config.num_labels)
    names = [str(v) for _, v in sorted((config.id2label or {}).items())] if has_labels else []
    if not names:
        return f"{n} output" + ("s" if n != 1 else "")
    shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
    return f"{n} label" + ("s" if n != 1 else "") + f" ({shown})"
