"""The ``search`` section: keys must be real recipe values, ranges must make sense, all errors at once."""

from __future__ import annotations

import pytest

from tunelab.config import RecipeError, load_recipe, validate_recipe
from tunelab.config.search import SearchConfig

BASE = {"data": {"sources": [{"bundled": "rotten_tomatoes"}]}}
LR = {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}


def recipe(search: dict) -> dict:
    return {**BASE, "search": search}


def problems_of(search: dict) -> list[str]:
    with pytest.raises(RecipeError) as info:
        validate_recipe(recipe(search))
    return info.value.problems


def test_a_full_space_validates_with_typed_params():
    r = validate_recipe(recipe({
        "space": {
            "train.learning_rate": LR,
            "train.epochs": {"type": "int", "low": 1, "high": 3},
            "train.batch_size": {"type": "categorical", "choices": [16, 32]},
            "model.adapter.r": {"type": "int", "low": 4, "high": 32, "log": True},
            "model.adapter.dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.05},
            "train.scheduler": {"type": "categorical", "choices": ["linear", "cosine"]},
        },
        "n_trials": 6,
        "metric": "macro_f1",
    }))
    space = r.search.space
    assert space["train.batch_size"].choices == [16, 32]
    assert type(space["train.batch_size"].choices[0]) is int  # not turned into a float or a string
    assert space["train.learning_rate"].log and r.search.n_trials == 6


@pytest.mark.parametrize(
    "key",
    ["train.loss", "train.loss.name", "train.loss.gamma", "train.strategies", "train.strategies.0.decay",
     "model.adapter", "model.name", "run.seed"],
)
def test_plugin_specs_list_items_and_whole_sections_are_searchable(key):
    r = validate_recipe(recipe({"space": {key: {"type": "categorical", "choices": [1, 2]}}}))
    assert list(r.search.space) == [key]


def test_recipes_without_a_search_section_stay_valid():
    assert validate_recipe(BASE).search is None
    assert SearchConfig().space == {}


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("train.lr", "train has no key 'lr' (known: "),
        ("train.strategies.decay", "train.strategies is a list: name an item by its index"),
        ("train.epochs.low", "train.epochs is a value, not a section"),
        ("train.loss.gama.x", "train.loss has no key 'gama' (known: "),
        ("data.split.test", "trials share the parent run's prepared data"),
        ("run.name", "each trial gets its own run folder"),
        ("evaluate.confidence", "evaluate does not run"),
        ("search.n_trials", "cannot search themselves"),
        ("modle.name", "the recipe has no key 'modle'"),
    ],
)
def test_unknown_or_unsearchable_keys_name_the_key_and_the_fix(key, says):
    (problem,) = problems_of({"space": {key: LR}})
    assert problem.startswith(f"search.space.{key}"), problem
    assert says in problem, problem


def test_every_problem_is_reported_at_once():
    problems = problems_of({
        "space": {
            "train.lr": LR,
            "train.warmup_ratio": {"type": "float", "low": 0.5, "high": 0.1},
            "train.weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "log": True},
            "train.scheduler": {"type": "choice", "choices": ["linear"]},
            "train.batch_size": {"type": "categorical", "choices": [16, 16]},
        },
        "n_trials": 0,
        "direction": "up",
    })
    text = "\n".join(problems)
    assert len(problems) == 7, text
    for part in ("search.space.train.lr", "low (0.5) must not exceed high (0.1)", "log scale needs low > 0",
                 "'choice'", "choices must not repeat", "search.n_trials", "search.direction"):
        assert part in text


def test_overrides_reach_the_search_section(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("data:\n  sources:\n    - bundled: rotten_tomatoes\nsearch:\n  space:\n"
                    "    train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n")
    r = load_recipe(path, ["search.n_trials=3", 'search.study_name="123"'])
    assert r.search.n_trials == 3 and r.search.study_name == "123"


def test_params_know_their_own_values():
    cfg = SearchConfig.model_validate({"space": {
        "train.epochs": {"type": "int", "low": 1, "high": 5, "step": 2},
        "train.batch_size": {"type": "categorical", "choices": [16, 32, True]},
        "train.strategies": {"type": "categorical", "choices": [[], [{"name": "early_stopping"}]]},
    }})
    same = lambda v: v  # noqa: E731 (the recipe holds each choice as given)
    epochs, batch, strategies = cfg.space.values()
    assert epochs.match_own(3.0, same) == (True, 3) and type(epochs.match_own(3.0, same)[1]) is int
    assert epochs.match_own(2, same)[0] is False and epochs.match_own(True, same)[0] is False
    assert batch.match_own(16.0, same) == (True, 16) and batch.match_own(64, same) == (False, None)
    assert batch.match_own(True, same) == (True, True) and batch.match_own(1, same)[0] is False
    stored = strategies.match_own([{"name": "early_stopping"}], same)[1]
    assert stored == '[{"name": "early_stopping"}]'
    assert strategies.decode(stored) == [{"name": "early_stopping"}]
