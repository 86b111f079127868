"""Applying the space to recipes: sampled values, the recipe's own values, and bounds checked up front."""

from __future__ import annotations

import optuna
import pytest

from tunelab.config import RecipeError, validate_recipe
from tunelab.search.space import check_space, default_params, recipe_value, sample, with_params

SPACE = {
    "train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "train.epochs": {"type": "int", "low": 1, "high": 3},
    "train.batch_size": {"type": "categorical", "choices": [16, 32]},
    "model.adapter.r": {"type": "int", "low": 4, "high": 16},
}


def make(space: dict | None = None, **search) -> object:
    return validate_recipe({
        "run": {"name": "s", "output_dir": "/tmp/x"},
        "data": {"sources": [{"bundled": "rotten_tomatoes"}]},
        "train": {"batch_size": 16, "learning_rate": 5e-5, "epochs": 1},
        "search": {"space": space or SPACE, **search},
    })


def test_with_params_sets_nested_keys_and_the_run_folder():
    r = make()
    t = with_params(r, {"train.learning_rate": 1e-4, "model.adapter.r": 12}, output_dir="/tmp/s", name="trial-3")
    assert t.train.learning_rate == 1e-4 and t.model.adapter.r == 12
    assert str(t.run_dir_path()) == "/tmp/s/trial-3"
    assert r.model.adapter.r == 8 and r.run.name == "s", "the parent recipe is unchanged"


def test_default_params_are_the_recipes_own_values_in_the_params_types():
    r = make()
    params = default_params(r, r.search)
    assert params == {"train.learning_rate": 5e-5, "train.epochs": 1, "train.batch_size": 16,
                      "model.adapter.r": 8}
    assert type(params["train.epochs"]) is int  # epochs is a float field; the int param wants an int


def test_sampled_values_stay_inside_the_space():
    r = make()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        params = sample(trial, r.search)
        assert 1e-5 <= params["train.learning_rate"] <= 1e-3
        assert params["train.batch_size"] in (16, 32) and 1 <= params["train.epochs"] <= 3
        with_params(r, params)  # always a valid recipe
        study.tell(trial, 0.0)


def test_bounds_that_break_the_recipe_are_caught_before_any_trial():
    r = make({
        "train.warmup_ratio": {"type": "float", "low": 0.0, "high": 1.0},  # warmup_ratio < 1
        "train.batch_size": {"type": "categorical", "choices": [0, 16]},  # batch_size >= 1
        "train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3},  # excludes the recipe's 5e-5
    })
    with pytest.raises(RecipeError) as info:
        check_space(r, r.search)
    text = "\n".join(info.value.problems)
    assert len(info.value.problems) == 3, text
    assert "search.space.train.warmup_ratio: the value 1.0 makes an invalid recipe" in text
    assert "search.space.train.batch_size: the value 0 makes an invalid recipe" in text
    assert "search.space.train.learning_rate: the recipe's own value 5e-05 is outside the space" in text
    assert "search.enqueue_default: false" in text


def test_own_value_outside_the_space_is_fine_without_the_default_trial():
    r = make({"train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3}}, enqueue_default=False)
    check_space(r, r.search)
    assert recipe_value(r, "train.learning_rate") == 5e-5
