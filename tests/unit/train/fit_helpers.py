"""Small builders for tests that call ``fit`` directly on the tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import classification_recipe, qa_rows, sentiment_rows, sft_recipe, write_jsonl

from tunelab.config import Recipe, validate_recipe
from tunelab.tasks import get_task
from tunelab.train.callbacks import Callback, FitContext, Plan
from tunelab.train.embedding_rows import used_row_tables
from tunelab.train.loop import FitInputs, FitPaths, FitResult, fit

LABELS = ["neg", "pos"]


def cls_recipe(tiny_bert: Path, tmp_path: Path, model: dict | None = None, **train: Any) -> Recipe:
    raw = classification_recipe(tiny_bert, tmp_path / "unused.jsonl", tmp_path / "runs", **train)
    raw["model"].update(model or {})
    return validate_recipe(raw)


def cls_setup(tiny_bert: Path, tmp_path: Path, n: int = 64, model: dict | None = None, **train: Any):
    """(recipe, task, model, tokenizer, train features, validation features) for the tiny BERT."""
    recipe = cls_recipe(tiny_bert, tmp_path, model, **train)
    task = get_task("classification")
    net, tok = task.load_base(recipe, LABELS)
    rows = sentiment_rows(n + 16)
    train, val = (task.encode(part, tok, recipe, LABELS) for part in (rows[:n], rows[n:]))
    return recipe, task, net, tok, train, val


def sft_setup(tiny_llama: Path, tmp_path: Path, n: int = 48, **train: Any):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_rows(n))
    recipe = validate_recipe(sft_recipe(tiny_llama, data, tmp_path / "runs", **train))
    task = get_task("sft")
    net, tok = task.load_base(recipe)
    rows = [{"messages": [{"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["response"]}]} for r in qa_rows(n)]
    return recipe, task, net, tok, task.encode(rows, tok, recipe)


def run_fit(recipe: Recipe, task, model, tok, train, val, tmp_path: Path, plan: Plan | None = None,
            resume: bool = False) -> FitResult:
    """``fit`` with checkpoints in ``tmp_path/ckpt`` and the log in ``tmp_path/log.jsonl``."""
    return fit(FitInputs(model, tok, task, train, val), recipe.train, recipe.run.seed,
               FitPaths(tmp_path / "ckpt", tmp_path / "log.jsonl"), resume=resume, plan=plan)


def full_weights(model) -> dict[str, Any]:
    """Every parameter by name, detached copies; an embedding that trains its used rows alone
    (``train.used_embedding_rows``) as its full table, as a checkpoint holds it."""
    tables = used_row_tables(model)
    named = model.named_parameters()
    return {n: (tables[n].merged() if n in tables else p.detach().clone()) for n, p in named}


class Record(Callback):
    """Calls ``fn(ctx)`` after every step and keeps what it returns."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.seen: list[Any] = []

    def on_step_end(self, ctx: FitContext, loss: float) -> None:
        self.seen.append(self.fn(ctx))


class Crash(Callback):
    """Stands in for a killed process: fails at the start of the step after ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_start(self, ctx: FitContext) -> None:
        if ctx.state.global_step == self.at:
            raise KeyboardInterrupt
