"""The model being explained, loaded once, with what every method needs beside it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from tunelab.config import Recipe
from tunelab.explain.config import ExplainConfig
from tunelab.explain.predictor import Predictor
from tunelab.runs import MissingArtifactError, RunDir
from tunelab.tasks import Task, get_task
from tunelab.tasks.base import MODEL_INFO

# task name -> (model kind, what its outputs become before they are explained)
KIND_OF_TASK = {
    "classification": ("classifier", "softmax"),
    "multilabel": ("classifier", "sigmoid"),
    "regression": ("classifier", "identity"),
    "sft": ("causal", "identity"),
    "lm": ("causal", "identity"),
}


@dataclass
class Context:
    """A loaded model and the shared predictor; ``labels`` name the classifier's outputs."""

    model: Any
    tokenizer: Any
    task: Task
    kind: str
    predictor: Predictor
    cfg: ExplainConfig
    labels: list[str]
    max_length: int
    seed: int
    which: str  # "tuned" or "base"
    chat: bool = False  # causal LM prompts are rendered with the chat template
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for the stage's warnings (rows skipped, budgets)

    @property
    def mask_id(self) -> int:
        """The token that stands for a removed word in occlusion: [MASK], else UNK, else padding."""
        tok = self.tokenizer
        for tid in (tok.mask_token_id, tok.unk_token_id, tok.pad_token_id):
            if tid is not None:
                return int(tid)
        return 0

    def embeddings(self) -> torch.nn.Module:
        return input_embeddings(self.model)

    @contextlib.contextmanager
    def eager_attention(self) -> Iterator[None]:
        """Attention weights need eager attention (SDPA returns none): switch for the duration."""
        core = _core(self.model)
        before = getattr(core.config, "_attn_implementation", None)
        if before != "eager":
            core.set_attn_implementation("eager")
        try:
            yield
        finally:
            if before not in (None, "eager"):
                core.set_attn_implementation(before)


def _core(model):
    """The transformers model inside a tunelab head (``HeadedModel.backbone``) or the model itself."""
    return getattr(model, "backbone", model)


def input_embeddings(model) -> torch.nn.Module:
    """The token-embedding layer (what integrated gradients interpolates)."""
    core = _core(model)
    layer = core.get_input_embeddings() if hasattr(core, "get_input_embeddings") else None
    if layer is None:
        raise ValueError(f"cannot find the token embeddings of a {type(model).__name__}")
    return layer


def load_context(recipe: Recipe, run_dir: RunDir, *, base: bool = False) -> Context:
    """The run's fine-tuned model (or the base model with ``base``), ready to explain."""
    from tunelab.train.precision import choose_precision

    cfg: ExplainConfig = recipe.section("explain")
    task = get_task(recipe.task)
    if recipe.task not in KIND_OF_TASK:
        raise ValueError(f"explain does not know task {recipe.task!r}; it explains {', '.join(KIND_OF_TASK)}")
    kind, output = KIND_OF_TASK[recipe.task]
    labels = run_dir.labels() if task.has_labels else []
    if base:
        model, tokenizer = task.load_base(recipe, labels or None)
    else:
        if not (run_dir.model / MODEL_INFO).is_file():
            raise MissingArtifactError(
                f"{run_dir.model} has no trained model: run `tunelab train RECIPE` first "
                "(or `tunelab explain RECIPE --base` to explain the base model)"
            )
        model, tokenizer = task.load_tuned(run_dir.model, recipe, labels or None)
    model = _merged(model).eval()
    if recipe.train.num_threads:
        torch.set_num_threads(recipe.train.num_threads)  # set once: every method runs in this process
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    precision = choose_precision(recipe.train.precision, device)
    if kind == "classifier" and not labels:
        labels = ["value"] if output == "identity" else [str(i) for i in range(model.config.num_labels)]
    predictor = Predictor(
        model, tokenizer, kind=kind, output=output, batch_size=cfg.batch_size, precision=precision
    )
    return Context(
        model=model,
        tokenizer=tokenizer,
        task=task,
        kind=kind,
        predictor=predictor,
        cfg=cfg,
        labels=labels,
        max_length=recipe.model.max_length,
        seed=recipe.run.seed,
        which="base" if base else "tuned",
        chat=recipe.task == "sft" and tokenizer.chat_template is not None,
        notes=[
            f"model.long_text is {recipe.model.long_text}, but explanations read a long text's first "
            f"{recipe.model.max_length} tokens (its first window), not what the model pools"
        ] if recipe.model.long_text != "truncate" and kind == "classifier" else [],
    )


def _merged(model):
    """An adapter merged into its base: one plain model is faster to explain and has one embedding."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
