"""The task interface: the rest of the pipeline asks the task for its model, batches and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from tunelab.config import Recipe
from tunelab.registry import Registry

MODEL_INFO = "tunelab_model.json"


class Task(ABC):
    """One kind of goal. Subclasses register with ``@TASKS.register(name)``."""

    name: str = ""
    default_metric: str = "loss"
    peft_task_type: str = ""  # peft TaskType name for adapters
    loss_kind: str = "classification"  # the outputs this task's losses score (see tunelab.train.losses)
    default_loss: str = "cross_entropy"
    _loss = None  # set by use_loss

    @staticmethod
    def greater_is_better(metric: str) -> bool:
        return metric not in {"loss", "perplexity", "ece", "brier", "log_loss"}

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
    def validate(self, model, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Validation figures used during training (``loss`` plus the task's metrics)."""

    @abstractmethod
    def evaluate(
        self, model, tokenizer, rows: list[dict[str, Any]], recipe: Recipe, labels
    ) -> dict[str, Any]:
        """Test metrics with confidence intervals."""

    # loss ----------------------------------------------------------------------------------
    def use_loss(self, spec, features: list[dict[str, Any]], labels: list[str] | None = None) -> None:
        """Build the training loss from ``train.loss`` (None: the task's default) and the train features."""
        from tunelab.train.losses import build_loss

        name, params = (spec.name, spec.params()) if spec is not None else (self.default_loss, {})
        self._loss = build_loss(name, params, self.loss_kind, self.loss_data(features, labels))

    def loss_data(self, features: list[dict[str, Any]], labels: list[str] | None):
        """Train-split facts a loss may need (class counts); none by default."""
        from tunelab.train.losses import LossData

        return LossData()

    def forward(self, model, batch: dict[str, torch.Tensor]):
        """The model's output on ``batch`` (labels are not passed: the task computes the loss)."""
        return model(**{k: v for k, v in batch.items() if k != "labels"})

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._loss is None:
            self.use_loss(None, [])
        return self._loss(self.forward(model, batch).logits, batch["labels"])

    @abstractmethod
    def example_losses(self, model, batches: Iterable[dict[str, torch.Tensor]]) -> list[float]:
        """Per-example loss of ``model`` (curriculum difficulty), in feature order."""

    def pack(self, features: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
        """Features packed into rows of at most ``max_length`` tokens (``train.packing``)."""
        raise ValueError(f"train.packing is for sft; task {self.name!r} cannot pack examples")

    # saving / loading the tuned model ------------------------------------------------
    def model_info(self, recipe: Recipe, base_path: str, labels: list[str] | None) -> dict[str, Any]:
        return {
            "task": self.name,
            "base_model": base_path,
            "model_name": recipe.model.name,
            "adapter": recipe.model.adapter.method,
            "head": recipe.model.head.type,  # a tunelab head (not "auto") needs tunelab to reload
            "labels": labels,
            "max_length": recipe.model.max_length,
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


TASKS: Registry[type[Task]] = Registry("task")


def get_task(name: str) -> Task:
    # import for registration side effects of the built-in tasks
    from tunelab.tasks import classification, regression, sft  # noqa: F401

    return TASKS.get(name)()
