"""What every preflight check shares: the recipe, its task, and the list of findings with key paths."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.config import Recipe

# The prediction kind each built-in task produces (see tunelab.metrics.registry.KINDS). A task that
# declares a ``prediction_kind`` class attribute is trusted over this table.
PREDICTION_KINDS = {
    "classification": "labels",
    "regression": "values",
    "multilabel": "multilabel",
    "sft": "tokens",
    "lm": "tokens",
}


def prediction_kind(task: Any) -> str | None:
    """The kind of predictions ``task`` makes: its ``prediction_kind`` attribute, else by name."""
    declared = getattr(type(task), "prediction_kind", None)
    if isinstance(declared, str) and declared:
        return declared
    return PREDICTION_KINDS.get(getattr(task, "name", ""))


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class Findings:
    """Problems (the recipe cannot work) and notes (things not checked, or worth a look).

    Each is written ``key.path (line N): message`` like the schema errors of
    :class:`tunelab.config.RecipeError`; a key absent from the YAML (a default) takes the line of
    its nearest parent that is there.
    """

    lines: dict[str, int] = field(default_factory=dict)
    _problems: list[tuple[int, int, str]] = field(default_factory=list)
    _notes: list[tuple[int, int, str]] = field(default_factory=list)

    def line(self, key: str) -> int | None:
        parts = key.split(".")
        while parts:
            found = self.lines.get(".".join(parts))
            if found is not None:
                return found
            parts.pop()
        return None

    def _entry(self, key: str, message: str, into: list[tuple[int, int, str]]) -> None:
        line = self.line(key)
        text = f"{key} (line {line}): {message}" if line is not None else f"{key}: {message}"
        if all(t != text for _, _, t in into):
            into.append((line if line is not None else 1 << 30, len(into), text))

    def problem(self, key: str, message: str) -> None:
        self._entry(key, message, self._problems)

    def note(self, key: str, message: str) -> None:
        self._entry(key, message, self._notes)

    @property
    def problems(self) -> list[str]:
        """In the order of the recipe's lines (keys the YAML does not show last)."""
        return [t for *_, t in sorted(self._problems)]

    @property
    def notes(self) -> list[str]:
        return [t for *_, t in sorted(self._notes)]


@dataclass
class Context:
    recipe: Recipe
    findings: Findings
    task: Any = None  # a tunelab.tasks.Task, or None when the task cannot be loaded
    kind: str | None = None  # the task's prediction kind, None when unknown

    @classmethod
    def build(cls, recipe: Recipe, lines: dict[str, int] | None = None) -> Context:
        findings = Findings(dict(lines or {}))
        ctx = cls(recipe, findings)
        try:
            from tunelab.tasks import get_task

            ctx.task = get_task(recipe.task)
        except Exception as exc:  # a plug-in task may fail to import in any way
            findings.problem("task", f"cannot load task {recipe.task!r}: {type(exc).__name__}: {exc}")
            return ctx
        ctx.kind = prediction_kind(ctx.task)
        return ctx

    @property
    def task_name(self) -> str:
        return self.recipe.task


def key_lines(path: str | Path) -> dict[str, int]:
    """Line numbers of the key paths of the recipe file (empty when the file cannot be parsed)."""
    from tunelab.config.load import _key_lines  # the loader's own map, so lines agree with its errors

    try:
        return _key_lines(Path(path).read_text(encoding="utf-8"))
    except Exception:  # lines only decorate messages; the loader reports bad YAML itself
        return {}
