"""Loss and strategy entries are validated strictly, each problem reported with its key path."""

from __future__ import annotations

import pytest

from tunelab.config import RecipeError, validate_recipe
from tunelab.config.train import STRATEGY_SPECS, CurriculumSpec, FocalSpec, PluginSpec
from tunelab.train.strategies import STRATEGIES, StrategySetup, build_plan

BASE = {"data": {"sources": [{"bundled": "rotten_tomatoes"}]}}


def _problems(train: dict, model: dict | None = None) -> list[str]:
    with pytest.raises(RecipeError) as info:
        validate_recipe({**BASE, "train": train, "model": model or {}})
    return info.value.problems


def test_every_problem_is_listed_with_its_key_path():
    problems = _problems({
        "loss": {"name": "focal", "gama": 2},
        "strategies": [
            {"name": "gradual_unfreezing", "every": 0},
            {"name": "layerwise_lr", "decay": 1.5},
            {"name": "curriculum", "difficulty": "size"},
            {"name": "nope"},
        ],
    }, {"freeze": {"layers": -1}, "dropout": {"attention": 1.0}, "head": {"type": "auto", "pooling": "mean"}})
    assert len(problems) == 8, problems
    for key in ("train.loss.gama", "train.strategies.0.every", "train.strategies.1.decay",
                "train.strategies.2.difficulty", "train.strategies.3", "model.freeze.layers",
                "model.dropout.attention", "model.head"):
        assert any(p.startswith(key + ":") for p in problems), key
    assert any("unknown strategy 'nope'; known: curriculum, early_stopping" in p for p in problems)


def test_names_shorthand_defaults_and_dotted_paths():
    r = validate_recipe({**BASE, "train": {"loss": "focal", "strategies": [
        {"name": "curriculum"}, {"name": "mypkg.strategies:Mine", "anything": 1}]}})
    assert r.train.loss == FocalSpec(gamma=2.0)
    assert r.train.strategies[0] == CurriculumSpec(difficulty="length", pacing="competence")
    assert isinstance(r.train.strategies[1], PluginSpec) and r.train.strategies[1].params() == {"anything": 1}
    assert "strategies" in _problems({"strategies": [{"name": "curriculum"}, {"name": "curriculum"}]})[0]


def test_every_configured_strategy_is_registered():
    build_plan([], StrategySetup(None, None, None, [], validate_recipe(BASE).train, 0))  # registers built-ins
    assert set(STRATEGY_SPECS) == set(STRATEGIES.names())


def test_two_batch_orders_are_refused():
    ordered = {"name": "curriculum", "pacing": "ordered"}
    cfg = validate_recipe({**BASE, "train": {"strategies": [ordered]}}).train
    setup = StrategySetup(None, None, None, [{"input_ids": [1]}], cfg, 0)
    same = CurriculumSpec(pacing="ordered").params()
    custom = PluginSpec(name="tunelab.train.strategies.curriculum:curriculum", **same)
    with pytest.raises(ValueError, match=r"'curriculum' and .* both set the batch_order"):
        build_plan([cfg.strategies[0], custom], setup)
