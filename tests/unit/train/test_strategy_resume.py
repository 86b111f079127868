"""A run with every strategy, interrupted and resumed, ends with the weights of an uninterrupted run.

Strategies derive their state (open layer groups, curriculum pool, early-stopping count) from the
step number and the logged history, so nothing is lost with the process.
"""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.fit_helpers import Crash, cls_setup, run_fit
from transformers import set_seed

from tunelab.train.strategies import StrategySetup, build_plan

STRATEGIES = [
    {"name": "gradual_unfreezing", "every": 3},
    {"name": "layerwise_lr", "decay": 0.9},
    {"name": "curriculum", "difficulty": "length", "pacing": "competence", "full_at": 0.3},
    {"name": "early_stopping", "patience": 3, "metric": "accuracy"},
]


def _fit(tiny_bert, tmp_path, crash_at: int | None = None, resume: bool = False):
    set_seed(7)
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=32, batch_size=8, max_steps=8, eval_every=4, save_every=2,
        strategies=STRATEGIES,
    )
    plan = build_plan(recipe.train.strategies, StrategySetup(model, task, tok, train, recipe.train, 7))
    if crash_at is not None:
        plan.callbacks.append(Crash(crash_at))
    result = run_fit(recipe, task, model, tok, train, val, tmp_path, plan, resume=resume)
    return result, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_resume_with_strategies_matches_an_uninterrupted_run(tiny_bert, tmp_path):
    straight, weights = _fit(tiny_bert, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        _fit(tiny_bert, tmp_path / "b", crash_at=5)  # the last checkpoint is at step 4
    resumed, weights_b = _fit(tiny_bert, tmp_path / "b", resume=True)
    assert resumed.resumed_from == 4 and resumed.state.global_step == straight.state.global_step
    assert [h["step"] for h in resumed.state.history] == [h["step"] for h in straight.state.history]
    assert resumed.state.best_metric == straight.state.best_metric
    for n, w in weights.items():
        assert torch.equal(w, weights_b[n]), n
