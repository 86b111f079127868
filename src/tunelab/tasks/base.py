"""The task interface: the rest of the pipeline asks the task what it needs.

A task owns its data format (how a row's label is read), whether it has a label vocabulary, its
model and encoding, its loss, its metrics (headline figures; their direction comes from
``tunelab.metrics.registry``), its per-example prediction rows and how candidate base models are
ranked for it. Adding a task means a module here and an entry point: nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions, higher_is_better
from tunelab.registry import TASKS

MODEL_INFO = "tunelab_model.json"


def saved_model_info(model_dir: Path) -> dict[str, Any]:
    """``model_dir/tunelab_model.json``: what the train stage learned and saved beside the weights
    (a threshold, a temperature); ``{}`` for a model saved without it."""
    import json

    path = Path(model_dir) / MODEL_INFO
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@dataclass
class Scored:
    """One candidate base model's ranking score and what scoring it cost (forward passes only)."""

    score: float
    parameters: int
    tokens: int
    seconds: float


class Task(ABC):
    """One kind of goal. Subclasses register with ``@TASKS.register(name)`` and an entry point."""

    name: str = ""
    data_format: str = "labelled"  # the data stage's row shape: labelled (text + label) | chat | text
    has_labels: bool = False  # a label vocabulary (data/labels.json) comes from the data
    headline: tuple[str, ...] = ()  # metrics that headline the evaluation and the comparison
    default_metric: str = "loss"  # validation metric that picks the best checkpoint by default
    validation_metrics: tuple[str, ...] = ()  # computed at every validation besides the loss
    rank_metric: str = "loss"  # what rank-models reports for this task
    base_note: str = ""  # what "base" means in the base-vs-tuned comparison, when it needs saying
    rank_kind: str = "encoder"  # bundled models of this kind are the default ranking candidates
    peft_task_type: str = ""  # peft TaskType name for adapters
    loss_kind: str = "classification"  # the outputs this task's losses score (see tunelab.tasks.losses)
    default_loss: str = "cross_entropy"
    _loss = None  # set by use_loss

    @staticmethod
    def greater_is_better(metric: str) -> bool:
        return higher_is_better(metric)

    # data ------------------------------------------------------------------------------------
    def parse_label(self, value: Any, recipe: Recipe) -> tuple[Any, str | None]:
        """The label of a row from its (present) label column: ``(label, None)`` or ``(None, reason)``."""
        return None, None

    def label_vocabulary(self, labels: Iterable[Any]) -> list[str] | None:
        """The sorted label names seen in the train split (tasks with ``has_labels``)."""
        return None

    # model -----------------------------------------------------------------------------------
    @abstractmethod
    def load_base(self, recipe: Recipe, labels: list[str] | None):
        """Pretrained model (with a task head where needed) and tokenizer, no adapter."""

    @abstractmethod
    def encode(
        self, rows: list[dict[str, Any]], tokenizer, recipe: Recipe, labels: list[str] | None
    ) -> list[dict[str, Any]]:
        """Tokenise rows into features with ``input_ids`` (and labels); no padding."""

    @abstractmethod
    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        """Pad a list of features into a batch."""

    @abstractmethod
    def predict(self, model, batches: Iterable[dict[str, torch.Tensor]]) -> tuple[float, Predictions]:
        """(mean loss, predictions) of ``model`` over ``batches``, in feature order."""

    def validate(
        self, model, batches: Iterable[dict[str, torch.Tensor]], extra: tuple[str, ...] = ()
    ) -> dict[str, float]:
        """Validation figures during training: the loss, the task's metrics and any ``extra`` ones."""
        from tunelab.metrics.registry import value

        loss, preds = self.predict(model, batches)
        out = {"loss": loss}
        for name in dict.fromkeys((*self.validation_metrics, *extra)):
            if name != "loss":
                out[name] = value(name, preds)
        return out

    def evaluate(
        self, model, tokenizer, rows: list[dict[str, Any]], recipe: Recipe, labels
    ) -> tuple[dict[str, Any], Predictions]:
        """Test figures (headline metrics with bootstrap intervals, plus details) and the predictions."""
        from tunelab.batching import eval_batches
        from tunelab.metrics.registry import get_metric, interval

        feats = self.encode(rows, tokenizer, recipe, labels)
        loss, preds = self.predict(model, eval_batches(feats, self, tokenizer, recipe.train.eval_batch_size))
        if labels:
            preds = replace(preds, labels=list(labels))
        ev = recipe.evaluate
        out: dict[str, Any] = {"loss": loss, "n_examples": len(preds), **self.details(preds, recipe)}
        for name in dict.fromkeys((*self.headline, *ev.metrics)):
            if name not in out and get_metric(name).fn is not None:  # the rest the task adds itself
                out[name] = interval(name, preds, ev.bootstrap_samples, ev.confidence, recipe.run.seed)
        return out, preds

    def details(self, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
        """Task-specific figures beyond the headline (per-class scores, a confusion matrix...)."""
        return {}

    def prediction_rows(self, rows: list[dict[str, Any]], preds: Predictions) -> list[dict[str, Any]]:
        """One JSON line per evaluated row: its text, the gold answer and the model's."""
        return [{"text": r.get("text"), "label": r.get("label")} for r in rows]

    def example_losses(self, model, batches: Iterable[dict[str, torch.Tensor]]) -> list[float]:
        """Per-example loss of ``model`` (curriculum difficulty), in feature order; a window of a long
        text (``model.long_text: chunk``) gets its row's loss, as predictions pool to rows."""
        groups: list[torch.Tensor] = []

        def seen(batches):
            for batch in batches:
                if "group" in batch:
                    groups.append(batch["group"])
                yield batch

        _, preds = self.predict(model, seen(batches))
        losses = self.losses_of(preds)
        if groups:
            from tunelab.tasks.windows import row_index

            losses = losses[row_index(torch.cat(groups))]
        return losses.tolist()

    def losses_of(self, preds: Predictions) -> np.ndarray:
        raise NotImplementedError(f"task {self.name!r} has no per-example loss")

    # loss ------------------------------------------------------------------------------------
    def use_loss(self, spec, features: list[dict[str, Any]], labels: list[str] | None = None) -> None:
        """Build the training loss from ``train.loss`` (None: the task's default) and the train features."""
        from tunelab.tasks.losses import build_loss

        name, params = (spec.name, spec.params()) if spec is not None else (self.default_loss, {})
        self._loss = build_loss(name, params, self.loss_kind, self.loss_data(features, labels))

    def loss_data(self, features: list[dict[str, Any]], labels: list[str] | None):
        """Train-split facts a loss may need (class counts); none by default."""
        from tunelab.tasks.losses import LossData

        return LossData()

    def forward(self, model, batch: dict[str, torch.Tensor]):
        """The model's output on ``batch`` (labels are not passed: the task computes the loss; nor is a
        window's row index, ``group``, which only pools predictions)."""
        return model(**{k: v for k, v in batch.items() if k not in ("labels", "group")})

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._loss is None:
            self.use_loss(None, [])
        return self._loss(self.forward(model, batch).logits, batch["labels"])

    def pack(self, features: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
        """Features packed into rows of at most ``max_length`` tokens (``train.packing``)."""
        raise ValueError(f"train.packing is for sft and lm; task {self.name!r} cannot pack examples")

    def after_fit(
        self, model, val_features: list[dict[str, Any]], tokenizer, recipe: Recipe
    ) -> dict[str, Any]:
        """Settings learned on validation after training, saved in the model info (a threshold)."""
        return {}

    # ranking candidate base models -------------------------------------------------------------
    def rank(self, recipe: Recipe, train: list[dict], val: list[dict], labels: list[str] | None) -> Scored:
        """Score the recipe's (frozen) model on a sample of the data, for ``tunelab rank-models``."""
        raise ValueError(f"rank-models cannot rank models for task {self.name!r}")

    # saving / loading the tuned model ------------------------------------------------------------
    def model_info(self, recipe: Recipe, base_path: str, labels: list[str] | None) -> dict[str, Any]:
        from tunelab.tasks.windows import LongText

        return {
            "task": self.name,
            "base_model": base_path,
            "model_name": recipe.model.name,
            "adapter": recipe.model.adapter.method,
            "head": recipe.model.head.type,  # a tunelab head (not "auto") needs tunelab to reload
            "labels": labels,
            "max_length": recipe.model.max_length,
            **LongText.of(recipe.model).info(),  # how a text longer than max_length is read
        }

    def load_tuned(self, model_dir: Path, recipe: Recipe, labels: list[str] | None):
        """The fine-tuned model from ``model_dir`` (an adapter on the base, or a full model)."""
        if (model_dir / "adapter_config.json").is_file():
            from peft import PeftModel

            base, tokenizer = self.load_base(recipe, labels)
            model = PeftModel.from_pretrained(base, str(model_dir))
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            model = self.auto_class().from_pretrained(str(model_dir), use_safetensors=True)
        model.eval()
        return model, tokenizer

    @staticmethod
    @abstractmethod
    def auto_class():
        """The ``transformers`` Auto class that loads this task's full model."""


def get_task(name: str) -> Task:
    """A fresh instance of the task registered as ``name`` (built-ins load from entry points)."""
    return TASKS.get(name)()
