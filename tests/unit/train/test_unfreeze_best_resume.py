"""Gradual unfreezing followed by a best-model save and ``--resume`` restores exactly the trained parameters.

Checkpoints and ``best/`` hold the parameters the optimiser holds, not those that happen to require
grad at save time: under gradual unfreezing the lower groups are frozen at the early saves, yet they
train later, and restoring an early best must reset them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.unit.train.fit_helpers import cls_setup, full_weights, run_fit
from transformers import set_seed

from tunelab.models.freeze import layer_groups
from tunelab.train.callbacks import Callback
from tunelab.train.strategies import StrategySetup, build_plan

EVERY = 2  # groups open at steps: head 1, layer 1 3, layer 0 5, embeddings 7
STEPS, EVAL_EVERY, SAVE_EVERY, CRASH_AFTER = 10, 3, 2, 4  # evaluations at 3, 6, 9, 10; saves at 2, 4, ...
# validation accuracy by step: one best before layer 0 and the embeddings open, one between
CURVES = {
    "best_saved_before_the_crash": {3: 0.7, 6: 0.6, 9: 0.65, 10: 0.5},
    "best_saved_after_the_resume": {3: 0.6, 6: 0.7, 9: 0.65, 10: 0.5},
}


class _ByStep:
    """The classification task, with the validation accuracy read from a curve at the current step
    (a function of the step, so the resumed run sees the curve the uninterrupted one saw)."""

    def __init__(self, task, curve: dict[int, float]) -> None:
        self.task, self.curve, self.step = task, curve, 0

    def __getattr__(self, name):
        return getattr(self.task, name)

    def validate(self, model, batches, extra=()):
        return {"loss": 1.0, "accuracy": self.curve[self.step]}


class _Watch(Callback):
    """Snapshots the weights and the frozen parameters after each step; stands in for a killed
    process by failing at the start of the step after ``crash_after``."""

    def __init__(self, task: _ByStep, crash_after: int | None = None) -> None:
        self.task, self.crash_after = task, crash_after
        self.weights: dict[int, dict[str, torch.Tensor]] = {}
        self.frozen: dict[int, set[str]] = {}

    def on_step_start(self, ctx) -> None:
        if ctx.state.global_step == self.crash_after:
            raise KeyboardInterrupt

    def on_step_end(self, ctx, loss: float) -> None:
        step = self.task.step = ctx.state.global_step
        named = list(ctx.model.named_parameters())
        self.weights[step] = full_weights(ctx.model)
        self.frozen[step] = {n for n, p in named if not p.requires_grad}  # as a save right after sees it


def _fit(tiny_bert, tmp_path: Path, curve, crash_after=None, resume=False, perturb=False):
    set_seed(7)
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=32, batch_size=8, max_steps=STEPS, eval_every=EVAL_EVERY,
        save_every=SAVE_EVERY, keep_checkpoints=10, learning_rate=1e-2,
        strategies=[{"name": "gradual_unfreezing", "every": EVERY}],
    )
    if perturb:  # the checkpoint, not the base model, must decide every trained parameter
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    scripted = _ByStep(task, curve)
    plan = build_plan(recipe.train.strategies, StrategySetup(model, scripted, tok, train, recipe.train, 7))
    watch = _Watch(scripted, crash_after)
    plan.callbacks.append(watch)
    result = run_fit(recipe, scripted, model, tok, train, val, tmp_path, plan, resume=resume)
    return result, model, watch


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert set(a) == set(b), what
    for n, t in a.items():
        assert torch.equal(t, b[n]), f"{what}: {n}"


@pytest.mark.parametrize("curve", CURVES.values(), ids=CURVES.keys())
def test_unfreezing_best_and_resume_restore_exactly_the_trained_parameters(tiny_bert, tmp_path, curve):
    straight, model_a, seen_a = _fit(tiny_bert, tmp_path / "a", curve)
    with pytest.raises(KeyboardInterrupt):
        _fit(tiny_bert, tmp_path / "b", curve, crash_after=CRASH_AFTER)
    resumed, model_b, seen_b = _fit(tiny_bert, tmp_path / "b", curve, resume=True, perturb=True)

    names = {n for n, _ in model_a.named_parameters()}
    groups = layer_groups(model_a)
    emb, layer0 = {n for n, _ in groups.embeddings}, {n for n, _ in groups.layers[0]}
    best_step = max(curve, key=curve.get)
    # the scenario: lower groups are frozen at the resumed-from checkpoint and at the best save,
    # and they train afterwards
    assert emb | layer0 <= seen_a.frozen[CRASH_AFTER] and emb <= seen_a.frozen[best_step]
    assert any(not torch.equal(seen_a.weights[best_step][n], seen_a.weights[STEPS][n]) for n in emb)

    # the resumed run (onto a perturbed base) is the uninterrupted run, bit for bit
    assert resumed.resumed_from == CRASH_AFTER and resumed.state.global_step == STEPS
    assert [h["step"] for h in resumed.state.history] == [h["step"] for h in straight.state.history]
    assert resumed.state.best_step == straight.state.best_step == best_step
    final_a = {n: p.detach() for n, p in model_a.named_parameters()}
    final_b = {n: p.detach() for n, p in model_b.named_parameters()}
    _assert_same(final_b, final_a, "resumed vs uninterrupted final weights")

    for step in range(CRASH_AFTER + 1, STEPS + 1):
        _assert_same(seen_b.weights[step], seen_a.weights[step], f"resumed vs uninterrupted at step {step}")
    # the final model is the best weights: groups that trained after the best save are reset too
    _assert_same(final_a, seen_a.weights[best_step], "final weights vs the best step's")

    for run in ("a", "b"):
        ckpt = tmp_path / run / "ckpt"
        # every checkpoint holds every parameter the optimiser trains, frozen at save time or not
        folders = sorted(ckpt.glob("step-*"))
        assert [int(f.name.split("-")[1]) for f in folders] == list(range(SAVE_EVERY, STEPS + 1, SAVE_EVERY))
        for folder in folders:
            step = int(folder.name.split("-")[1])
            _assert_same(load_file(str(folder / "trainable.safetensors")), seen_a.weights[step], folder.name)
        best = load_file(str(ckpt / "best" / "trainable.safetensors"))
        assert set(best) == names
        _assert_same(best, seen_a.weights[best_step], f"{run}: best")
