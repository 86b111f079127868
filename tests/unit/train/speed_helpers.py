"""Shared by the training-speed tests: fp32 fits on the tiny models and their loss curves."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from accelerate.state import AcceleratorState
from tests.helpers import lm_recipe, lm_texts, qa_rows, write_jsonl
from tests.unit.train.fit_helpers import cls_setup, run_fit, sft_setup
from transformers import set_seed

from tunelab.config import validate_recipe
from tunelab.models.adapters import apply_adapter
from tunelab.tasks import get_task
from tunelab.train.callbacks import Callback, Plan

STEPS = 20
CURVE_RTOL = 1e-2  # relative, per logged step, fp32: what "the same loss curve" means here
FP32 = {"precision": "fp32", "max_steps": STEPS, "log_every": 1, "eval_every": 10}


def losses(result) -> list[float]:
    return [h["loss"] for h in result.state.history if "loss" in h]


def assert_same_curve(a: list[float], b: list[float], rtol: float = CURVE_RTOL, trains: bool = True) -> None:
    """``a`` within ``rtol`` of ``b`` at every step; ``trains``: and the loss fell (the tiny BERT needs
    about 100 steps to leave chance level: its 20-step curve only wanders, step to step)."""
    assert len(a) == len(b) == STEPS
    for step, (x, y) in enumerate(zip(a, b, strict=True), 1):
        assert abs(x - y) <= rtol * abs(y), f"step {step}: {x} vs {y}"
    assert b[-1] < b[0] if trains else len(set(b)) > STEPS // 2, "the curve moves"


def sft_fit(
    tiny_llama: Path, tmp_path: Path, lora: bool = True, plan: Plan | None = None, resume: bool = False,
    ragged: bool = False, **train: Any,
):
    """An fp32 fit of the tiny Llama (LoRA without dropout: both sides of a comparison draw no random
    numbers, so a feature that changes tensor shapes is compared on the same network)."""
    AcceleratorState._reset_state()
    tmp_path.mkdir(parents=True, exist_ok=True)
    set_seed(7)
    train = {**FP32, "batch_size": 4, **train}
    recipe, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=48, **train)
    if ragged:  # prompts of 27 to about 50 tokens (qa_rows' are all 27 or 28)
        feats = task.encode(ragged_rows(48), tok, recipe)
        assert len(feats) == 48, "no answer truncated away"
    if lora:
        recipe.model.adapter.dropout = 0.0
        model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    task.use_loss(recipe.train.loss, feats)
    return run_fit(recipe, task, model, tok, feats[:40], feats[40:], tmp_path, plan, resume), model


def cls_fit(
    tiny_bert: Path, tmp_path: Path, plan: Plan | None = None, model: dict | None = None,
    resume: bool = False, **train: Any,
):
    """An fp32 fit of the tiny BERT, by default without dropout (padding changes the shapes dropout
    draws for); ``model``: recipe ``model:`` keys instead."""
    AcceleratorState._reset_state()
    tmp_path.mkdir(parents=True, exist_ok=True)
    set_seed(7)
    no_dropout = {"dropout": {"hidden": 0.0, "attention": 0.0}}
    recipe, task, net, tok, train_f, val = cls_setup(
        tiny_bert, tmp_path, n=64, model=model or no_dropout, **{**FP32, "batch_size": 8, **train}
    )
    task.use_loss(recipe.train.loss, train_f)
    return run_fit(recipe, task, net, tok, train_f, val, tmp_path, plan, resume), net


def ragged_rows(n: int) -> list[dict]:
    """Chat rows from ``qa_rows`` whose prompts start with 0 to 6 extra words."""
    rng = random.Random(0)
    return [
        {"messages": [{"role": "user", "content": "please " * rng.randint(0, 6) + r["prompt"]},
                      {"role": "assistant", "content": r["response"]}]}
        for r in qa_rows(n)
    ]


class Widths(Callback):
    """Records the width (time steps) of every batch the model sees in training mode."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_fit_start(self, ctx) -> None:
        def record(module, args, kwargs) -> None:
            if module.training:
                self.seen.append(kwargs["input_ids"].shape[1])

        ctx.model.register_forward_pre_hook(record, with_kwargs=True)


def lm_setup(tiny_llama: Path, tmp_path: Path, n: int = 120, **train: Any):
    """(recipe, task, model, tokenizer, blocks): the lm task's blocks of model.max_length, all full."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "texts.jsonl", lm_texts(n))
    recipe = validate_recipe(lm_recipe(tiny_llama, data, tmp_path / "runs", **train))
    task = get_task("lm")
    model, tok = task.load_base(recipe)
    blocks = task.encode(lm_texts(n), tok, recipe)
    full = [b for b in blocks if len(b["input_ids"]) == recipe.model.max_length]
    return recipe, task, model, tok, full
