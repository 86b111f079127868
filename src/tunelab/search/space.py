"""The search space applied to recipes: sample values, read the recipe's own, check every bound."""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe, RecipeError, validate_recipe
from tunelab.config.search import SearchConfig

MISSING = object()  # a key path the recipe does not reach (e.g. train.loss.gamma with no loss set)


class MissingItem(RecipeError):
    """A key path through a list item the recipe does not have (train.strategies.0 of an empty list)."""


def sample(trial: Any, cfg: SearchConfig) -> dict[str, Any]:
    """One value per searched key, drawn by the trial's sampler."""
    return {key: param.suggest(trial, key) for key, param in cfg.space.items()}


def decode(cfg: SearchConfig, stored: dict[str, Any]) -> dict[str, Any]:
    """A trial's params as optuna stores them -> the values to put in the recipe."""
    return {key: cfg.space[key].decode(value) for key, value in stored.items() if key in cfg.space}


def with_params(recipe: Recipe, params: dict[str, Any], source: str = "<search>", **run: Any) -> Recipe:
    """The recipe with ``params`` (dotted key paths) set, and ``run`` fields replaced, validated."""
    raw = recipe.model_dump(mode="json")
    for key, value in params.items():
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = _child(node, part, key, source)
        if isinstance(node, list):
            node[_index(node, leaf, key, source)] = value
        else:
            node[leaf] = value
    raw["run"].update(run)
    return validate_recipe(raw, source)


def recipe_value(recipe: Recipe, key: str) -> Any:
    """The recipe's value at ``key``, or ``MISSING``."""
    node: Any = recipe.model_dump(mode="json")
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def default_params(recipe: Recipe, cfg: SearchConfig) -> dict[str, Any]:
    """The recipe's own value of every searched key, as the study stores it (the study's trial 0)."""
    return {key: _own(recipe, key, param)[1] for key, param in cfg.space.items()}


def check_space(recipe: Recipe, cfg: SearchConfig) -> None:
    """Raise one error listing every bound or choice that would make an invalid recipe.

    Each end of a range (each choice) is tried on its own, so no trial fails on a value that could
    be caught here; with ``enqueue_default`` the recipe's own values must lie inside the space.
    """
    problems = []
    for key, param in cfg.space.items():
        where = f"search.space.{key}"
        try:
            with_params(recipe, {key: param.probes()[0]})
        except MissingItem as exc:  # the same for every value: say it once
            problems.append(f"{where}: {exc.problems[0].split(': ', 1)[1]}; add the item to the recipe")
            continue
        except RecipeError:
            pass  # reported below with the other values
        for value in param.probes():
            try:
                with_params(recipe, {key: value})
            except RecipeError as exc:
                detail = "; ".join(p.split(": ", 1)[-1] for p in exc.problems)
                problems.append(f"{where}: the value {value!r} makes an invalid recipe ({detail})")
        if not cfg.enqueue_default:
            continue
        own, inside = recipe_value(recipe, key), _own(recipe, key, param)[0]
        if own is MISSING:
            problems.append(
                f"{where}: the recipe has no value here to replay as trial 0; set the key "
                "in the recipe, or set search.enqueue_default: false"
            )
        elif not inside:
            problems.append(
                f"{where}: the recipe's own value {own!r} is outside the space; widen it "
                "(trial 0 replays the recipe's values) or set search.enqueue_default: false"
            )
    if problems:
        raise RecipeError("search.space", problems)


def _own(recipe: Recipe, key: str, param: Any) -> tuple[bool, Any]:
    own = recipe_value(recipe, key)
    if own is MISSING:
        return False, None

    def canonical(value: Any) -> Any:  # a choice as the recipe would hold it, defaults filled in
        try:
            return recipe_value(with_params(recipe, {key: value}), key)
        except RecipeError:
            return MISSING

    return param.match_own(own, canonical)


def _child(node: Any, part: str, key: str, source: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key, source)]
    if node.get(part) is None:  # an unset optional section (train.loss: null) starts empty
        node[part] = {}
    return node[part]


def _index(node: list, part: str, key: str, source: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise MissingItem(source, [f"{key}: the recipe's list has no item {part} (it has {len(node)})"])
    return int(part)
