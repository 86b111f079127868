"""Applying the space to recipes: sampled values, the recipe's own values, and bounds checked up front."""

from __future__ import annotations

import optuna
import pytest

from tunelab.config import RecipeError, validate_recipe
from tunelab.search.space import (
    MISSING,
    check_space,
    decode,
    default_params,
    recipe_value,
    sample,
    with_params,
)

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
    params = {"train.learning_rate": 1e-4, "model.adapter.r": 12}
    t = with_params(r, params, output_dir="/tmp/s", name="trial-3")
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


LAYERWISE = [[], [{"name": "layerwise_lr", "decay": 0.8}]]  # no strategy, or layer-wise learning rates


def test_plugin_names_and_whole_strategy_lists_are_choices():
    r = make({
        "train.loss": {"type": "categorical", "choices": [None, "focal", {"name": "focal", "gamma": 1.0}]},
        "train.strategies": {"type": "categorical", "choices": LAYERWISE},
    })
    check_space(r, r.search)
    assert default_params(r, r.search) == {"train.loss": None, "train.strategies": "[]"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        params = sample(trial, r.search)
        t = with_params(r, params)
        seen.add((t.train.loss.name if t.train.loss else None, len(t.train.strategies)))
        assert decode(r.search, trial.params) == params  # what the study stores maps back
        study.tell(trial, 0.0)
    assert {name for name, _ in seen} == {None, "focal"} and {n for _, n in seen} == {0, 1}


def test_a_key_inside_an_unset_plugin_is_created_and_its_own_value_must_exist():
    r = make({"train.loss.name": {"type": "categorical", "choices": ["cross_entropy", "focal"]}})
    assert with_params(r, {"train.loss.name": "focal"}).train.loss.name == "focal"
    assert recipe_value(r, "train.loss.name") is MISSING
    with pytest.raises(RecipeError, match="the recipe has no value here to replay as trial 0"):
        check_space(r, r.search)
    r2 = make({"train.loss.name": {"type": "categorical", "choices": ["cross_entropy", "focal"]}},
              enqueue_default=False)
    check_space(r2, r2.search)


def test_choices_are_compared_as_the_recipe_holds_them():
    raw = {
        "data": {"sources": [{"bundled": "rotten_tomatoes"}]},
        "train": {"loss": "focal", "epochs": 2},  # focal with its default gamma filled in
        "search": {"space": {
            "train.loss": {"type": "categorical", "choices": ["cross_entropy", "focal"]},
            "train.epochs": {"type": "categorical", "choices": [1, 2]},
        }},
    }
    r = validate_recipe(raw)
    assert default_params(r, r.search) == {"train.loss": "focal", "train.epochs": 2}


def test_list_items_are_reached_by_index_and_a_missing_item_is_named():
    r = make({"train.strategies.0.decay": {"type": "float", "low": 0.5, "high": 0.95}})
    with pytest.raises(RecipeError) as info:
        check_space(r, r.search)
    assert info.value.problems == [
        "search.space.train.strategies.0.decay: the recipe's list has no item 0 (it has 0); "
        "add the item to the recipe"
    ]
    raw = r.model_dump(mode="json")
    raw["train"]["strategies"] = [{"name": "layerwise_lr", "decay": 0.9}]
    r = validate_recipe(raw)
    check_space(r, r.search)
    assert with_params(r, {"train.strategies.0.decay": 0.7}).train.strategies[0].decay == 0.7
