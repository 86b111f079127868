"""Early stopping stops at the right step on a scripted validation curve, and survives a resume."""

from __future__ import annotations

import pytest
from tests.unit.train.fit_helpers import cls_setup, run_fit

from tunelab.train.checkpoint import TrainerState
from tunelab.train.strategies import StrategySetup, build_plan
from tunelab.train.strategies.early_stopping import EarlyStopping

# accuracy at evaluations 1..6: best at 2, then 0.6 and 0.59 do not beat it
CURVE = [0.5, 0.6, 0.6, 0.59, 0.9, 0.95]


class _Ctx:
    def __init__(self, step: int, history=()) -> None:
        self.state = TrainerState(global_step=step, history=list(history))
        self.stop, self.stop_reason = False, ""


def test_patience_counts_evaluations_without_improvement():
    cb = EarlyStopping("accuracy", higher_is_better=True, patience=2)
    stopped_at = None
    for i, value in enumerate(CURVE, start=1):
        ctx = _Ctx(step=10 * i)
        cb.on_evaluate(ctx, {"accuracy": value})
        if ctx.stop:
            stopped_at = ctx.state.global_step
            assert "accuracy did not improve for 2 evaluations (best 0.6 at step 20)" in ctx.stop_reason
            break
    assert stopped_at == 40


def test_lower_is_better_and_min_delta():
    cb = EarlyStopping("loss", higher_is_better=False, patience=1, min_delta=0.05)
    assert not cb.update(1.0, 1)
    assert not cb.update(0.9, 2)  # improved by 0.1
    assert cb.update(0.87, 3)  # 0.03 is below min_delta


def test_resume_rebuilds_the_count_from_history():
    history = [{"step": 10 * i, "validation": {"accuracy": v}} for i, v in enumerate(CURVE[:3], start=1)]
    cb = EarlyStopping("accuracy", True, patience=2)
    cb.on_fit_start(_Ctx(30, history))
    assert (cb.best, cb.bad) == (0.6, 1)
    ctx = _Ctx(40)
    cb.on_evaluate(ctx, {"accuracy": 0.59})
    assert ctx.stop


class _Scripted:
    """The classification task with validation figures read from ``CURVE``."""

    def __init__(self, task) -> None:
        self.task, self.calls = task, 0

    def __getattr__(self, name):
        return getattr(self.task, name)

    def validate(self, model, batches, extra=()):
        self.calls += 1
        return {"loss": 1.0, "accuracy": CURVE[self.calls - 1]}


def test_fit_stops_at_the_step_of_the_last_patient_evaluation(tiny_bert, tmp_path):
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=32, batch_size=8, max_steps=30, eval_every=2,
        strategies=[{"name": "early_stopping", "patience": 2, "metric": "accuracy"}],
    )
    scripted = _Scripted(task)
    plan = build_plan(recipe.train.strategies, StrategySetup(model, scripted, tok, train, recipe.train, 7))
    result = run_fit(recipe, scripted, model, tok, train, val, tmp_path, plan)
    assert result.state.global_step == 8 and scripted.calls == 4
    assert result.state.stopped.startswith("early stopping: accuracy")
    assert result.state.best_step == 4 and result.state.best_metric == pytest.approx(0.6)
