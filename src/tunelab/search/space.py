"""The search space applied to recipes: sample values, read the recipe's own, check every bound."""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe, RecipeError, validate_recipe
from tunelab.config.search import SearchConfig


def sample(trial: Any, cfg: SearchConfig) -> dict[str, Any]:
    """One value per searched key, drawn by the trial's sampler."""
    return {key: param.suggest(trial, key) for key, param in cfg.space.items()}


def with_params(recipe: Recipe, params: dict[str, Any], source: str = "<search>", **run: Any) -> Recipe:
    """The recipe with ``params`` (dotted key paths) set, and ``run`` fields replaced, validated."""
    raw = recipe.model_dump(mode="json")
    for key, value in params.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    raw["run"].update(run)
    return validate_recipe(raw, source)


def recipe_value(recipe: Recipe, key: str) -> Any:
    node: Any = recipe.model_dump(mode="json")
    for part in key.split("."):
        node = node[part]
    return node


def default_params(recipe: Recipe, cfg: SearchConfig) -> dict[str, Any]:
    """The recipe's own value of every searched key (the study's trial 0)."""
    return {key: p.coerce(recipe_value(recipe, key)) for key, p in cfg.space.items()}


def check_space(recipe: Recipe, cfg: SearchConfig) -> None:
    """Raise one error listing every bound or choice that would make an invalid recipe.

    Each end of a range is tried on its own, so a trial never fails on a value the user could have
    caught here; with ``enqueue_default`` the recipe's own values must lie inside the space.
    """
    problems = []
    for key, param in cfg.space.items():
        where = f"search.space.{key}"
        for value in param.probes():
            try:
                with_params(recipe, {key: value})
            except RecipeError as exc:
                detail = "; ".join(p.split(": ", 1)[-1] for p in exc.problems)
                problems.append(f"{where}: the value {value!r} makes an invalid recipe ({detail})")
        own = recipe_value(recipe, key)
        if cfg.enqueue_default and not param.contains(own):
            problems.append(
                f"{where}: the recipe's own value {own!r} is outside the space; widen the range "
                "(trial 0 replays the recipe's values) or set search.enqueue_default: false"
            )
    if problems:
        raise RecipeError("search.space", problems)

