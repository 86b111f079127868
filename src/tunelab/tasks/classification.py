"""Sequence classification: an encoder (or decoder) with a classification head; labels from a column."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path
from tunelab.tasks.base import TASKS, Task


@TASKS.register("classification")
class ClassificationTask(Task):
    name = "classification"
    default_metric = "accuracy"
    peft_task_type = "SEQ_CLS"

    @staticmethod
    def auto_class():
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def load_base(self, recipe: Recipe, labels: list[str] | None):
        if not labels:
            raise ValueError("classification needs the label list (data/labels.json)")
        path = resolve_model_path(recipe.model)
        tokenizer = load_tokenizer(recipe.model, path)
        model = self.auto_class().from_pretrained(
            path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
            **load_kwargs(recipe.model),
        )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer

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
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return dict(batch)

    @torch.no_grad()
    def predict(self, model, batches: Iterable[dict[str, torch.Tensor]]):
        """(mean loss, gold labels, class probabilities) over ``batches``."""
        model.eval()
        losses, gold, probs = [], [], []
        for batch in batches:
            out = model(**batch)
            losses.append(out.loss.item() * len(batch["labels"]))
            gold.append(batch["labels"].numpy())
            probs.append(torch.softmax(out.logits.float(), dim=-1).numpy())
        y = np.concatenate(gold)
        return float(sum(losses) / max(len(y), 1)), y, np.concatenate(probs)

    def validate(self, model, batches) -> dict[str, float]:
        from sklearn.metrics import f1_score

        loss, y, p = self.predict(model, batches)
        pred = p.argmax(-1)
        return {
            "loss": loss,
            "accuracy": float((pred == y).mean()),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        }

    def evaluate(self, model, tokenizer, rows, recipe: Recipe, labels) -> dict[str, Any]:
        from tunelab.evaluate.metrics import classification_metrics
        from tunelab.train.batching import eval_batches

        feats = self.encode(rows, tokenizer, recipe, labels)
        loss, y, p = self.predict(model, eval_batches(feats, self, tokenizer, recipe.train.eval_batch_size))
        ev = recipe.evaluate
        out = classification_metrics(
            y.tolist(),
            p.argmax(-1).tolist(),
            probs=p,
            labels=labels,
            n_bootstrap=ev.bootstrap_samples,
            confidence=ev.confidence,
            seed=recipe.run.seed,
        )
        out["loss"] = loss
        out["n_examples"] = len(rows)
        return out

