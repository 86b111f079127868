"""Load a recipe from YAML, apply ``key.path=value`` overrides, and report every error at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunelab.config.recipe import Recipe, recipe_model


class RecipeError(ValueError):
    """A recipe that cannot be used; ``problems`` lists each one as ``key.path: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the recipe:\n{lines}")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read ``path``, apply overrides such as ``train.epochs=2``, validate, and return the recipe."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(str(path), ["file not found (write a starter with `tunelab init recipe.yaml`)"])
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
        lines = _key_lines(text)
    except yaml.YAMLError as exc:
        raise RecipeError(str(path), [f"not valid YAML: {exc}"]) from exc
    except RecursionError:  # thousands of nested brackets, or an anchor that contains itself
        raise RecipeError(
            str(path), ["the YAML is nested too deeply (or refers to itself) to read"]
        ) from None
    if not isinstance(raw, dict):
        raise RecipeError(str(path), ["the top level must be a mapping of sections (run:, data:, ...)"])
    problems = apply_overrides(raw, overrides or [])
    return validate_recipe(raw, str(path), lines, problems)


def validate_recipe(
    raw: dict[str, Any],
    source: str = "<recipe>",
    lines: dict[str, int] | None = None,
    problems: list[str] | None = None,
) -> Recipe:
    """Validate a recipe mapping; raise one :class:`RecipeError` listing every problem."""
    problems = list(problems or [])
    plugins = raw.get("plugins") or []
    if isinstance(plugins, list) and all(isinstance(m, str) for m in plugins):
        from tunelab.stages import import_plugins  # before validation: they may add stages and sections

        problems.extend(import_plugins(plugins))
    try:
        recipe = recipe_model().model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(err, lines or {}) for err in exc.errors())
        recipe = None
    if problems:
        raise RecipeError(source, problems)
    assert recipe is not None
    return recipe


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> list[str]:
    """Set ``a.b.c=value`` entries in ``raw`` (values parsed as YAML); return malformed ones."""
    bad = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            bad.append(f"override {item!r}: expected key.path=value, e.g. train.epochs=2")
            continue
        parts = key.split(".")
        if not all(p.strip() for p in parts):
            bad.append(f"override {key}: the key path has an empty part (write it as section.key=value)")
            continue
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except RecursionError:
            bad.append(f"override {key}: the value is nested too deeply to read")
            continue
        except yaml.YAMLError as exc:
            why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            hint = f"; to pass it as a string, quote it: {key}='\"{value}\"'" if '"' not in value else ""
            bad.append(f"override {key}: the value {value!r} is not valid YAML ({why}){hint}")
            continue
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = parsed
    return bad


def _describe(err: dict[str, Any], lines: dict[str, int]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; `tunelab init` shows every key)"
    elif "input" in err and err["type"] != "missing" and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    where = f" (line {lines[loc]})" if loc in lines else ""
    return f"{loc or '<top>'}{where}: {msg}"


def _key_lines(text: str) -> dict[str, int]:
    """Map each ``a.b.0.c`` key path in the YAML text to its 1-based line number."""
    out: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                path = f"{prefix}.{k.value}" if prefix else str(k.value)
                out[path] = k.start_mark.line + 1
                walk(v, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                path = f"{prefix}.{i}"
                out[path] = v.start_mark.line + 1
                walk(v, path)

    root = yaml.compose(text)
    if root is not None:
        walk(root, "")
    return out


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe (defaults filled in) as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
