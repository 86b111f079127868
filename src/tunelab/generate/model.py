"""The model that writes: the run's fine-tuned causal LM (its adapter merged in memory), the base
model with ``--base``, or ``generate.generator`` for a run whose own model cannot write (a
classifier, whose model then checks the labels of synthetic texts)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from tunelab.config import Recipe
from tunelab.runs import MissingArtifactError, RunDir
from tunelab.tasks import Task, get_task
from tunelab.tasks.base import MODEL_INFO

WRITING_TASKS = ("sft", "lm")


@dataclass
class Writer:
    model: Any
    tokenizer: Any
    name: str  # what wrote the text, for provenance
    which: str  # tuned | base | generator
    adapter_hash: str | None
    precision: str

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)


def load_writer(recipe: Recipe, run_dir: RunDir, *, base: bool = False) -> Writer:
    """The causal LM that generates for this recipe (see the module docstring)."""
    from tunelab.train.precision import choose_precision

    cfg = recipe.section("generate")
    task = get_task(recipe.task)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = choose_precision(recipe.train.precision, device)
    if recipe.task not in WRITING_TASKS:
        if cfg.generator is None:
            raise ValueError(
                f"generate.generator: a {recipe.task} run's model cannot write text; set generate.generator "
                "to a causal LM (for example smollm2) to generate with it"
            )
        model, tokenizer = _load_causal(recipe, cfg.generator)
        return _ready(Writer(model, tokenizer, cfg.generator, "generator", None, precision), device)
    if base:
        model, tokenizer = task.load_base(recipe, None)
        return _ready(Writer(model, tokenizer, recipe.model.name, "base", None, precision), device)
    if not (run_dir.model / MODEL_INFO).is_file():
        raise MissingArtifactError(
            f"{run_dir.model} has no trained model: run `tunelab train RECIPE` first "
            "(or `tunelab generate RECIPE --base` to generate with the base model)"
        )
    model, tokenizer = task.load_tuned(run_dir.model, recipe, None)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()  # one plain model generates faster than base + adapter
    return _ready(
        Writer(model, tokenizer, recipe.model.name, "tuned", adapter_hash(run_dir), precision), device
    )


def load_base_writer(recipe: Recipe, writer: Writer) -> Writer:
    """The base model that scores quality (perplexity of the output): the writer itself when it is one."""
    if writer.which != "tuned":
        return writer
    model, tokenizer = get_task(recipe.task).load_base(recipe, None)
    return _ready(
        Writer(model, tokenizer, recipe.model.name, "base", None, writer.precision), writer.model.device
    )


def load_classifier(recipe: Recipe, run_dir: RunDir) -> tuple[Task, Any, Any] | None:
    """A classification run's fine-tuned model (it checks synthetic texts' labels), or None."""
    task = get_task(recipe.task)
    if not task.has_labels or not (run_dir.model / MODEL_INFO).is_file():
        return None
    model, tokenizer = task.load_tuned(run_dir.model, recipe, run_dir.labels())
    return task, model.eval(), tokenizer


def adapter_hash(run_dir: RunDir) -> str | None:
    """sha256 (first 12 hex) of the saved adapter or model weights: which fine-tune wrote a row."""
    for name in ("adapter_model.safetensors", "model.safetensors"):
        path = run_dir.model / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()[:12]
    return None


def _load_causal(recipe: Recipe, name: str):
    from transformers import AutoModelForCausalLM

    from tunelab.models.resolve import load_kwargs, load_tokenizer, resolve_model_path

    cfg = recipe.model.model_copy(update={"name": name, "adapter": recipe.model.adapter})
    path = resolve_model_path(cfg)
    return AutoModelForCausalLM.from_pretrained(path, **load_kwargs(cfg)), load_tokenizer(cfg, path)


def _ready(writer: Writer, device) -> Writer:
    writer.model.to(device).eval()
    if writer.tokenizer.pad_token is None:
        writer.tokenizer.pad_token = writer.tokenizer.eos_token
    return writer
