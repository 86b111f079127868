"""Stage declarations: what a stage reads, needs and writes, registered once by name.

A stage is declared once, next to its code (tunelab's own in their package ``__init__``), and
registered in :data:`STAGES`. The executor (``tunelab.pipeline``) runs any stage from its
declaration alone; the CLI makes a verb of every registered stage.

Stages come from three places, all loaded by :func:`load_stages`:
- the ``tunelab.stages`` entry-point group (tunelab's own, and any installed package's),
- the modules a recipe lists under ``plugins:`` (imported before the recipe is validated),
- any module that calls ``STAGES.register(...)`` when imported.

This module is the bottom of the package graph: it imports nothing of tunelab but the registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from tunelab.registry import Registry, UnknownPluginError

ENTRY_POINTS = "tunelab.stages"


@dataclass(frozen=True)
class Option:
    """A stage option: a keyword argument of the stage function and, unless ``cli=False``, a flag."""

    name: str
    default: Any = False
    help: str = ""
    type: type = bool
    cli: bool = True  # False for Python-only options (objects such as training callbacks)
    reruns: bool = False  # a true value runs the stage even when its outputs are current (--resume)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    ``run(recipe, run_dir, **options) -> StageResult`` does the work (a ``"module:function"`` path is
    imported only when the stage runs, so listing stages stays cheap). ``reads`` are the recipe
    sections (``train`` or dotted, ``run.seed``) its result depends on; ``needs`` the stages whose
    outputs it reads; ``outputs`` the run-directory paths that must exist for it to count as done.
    ``section`` is the pydantic model of the recipe section the stage owns (key: the stage name),
    when it owns one. ``inputs(recipe)`` hashes what the stage reads from outside the run directory.
    ``all_ranks``: under ``accelerate launch`` every process runs it (training); otherwise rank 0
    runs it while the others wait.
    """

    name: str
    run: Callable[..., Any] | str
    help: str
    reads: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    section: type | None = None
    options: tuple[Option, ...] = ()
    inputs: Callable[[Any], dict[str, Any]] | str | None = None
    all_ranks: bool = False
    version: str = "1"  # bump when the stage's output changes for the same recipe and inputs

    def __post_init__(self) -> None:
        if not self.name.replace("-", "_").isidentifier():
            raise ValueError(f"stage name {self.name!r}: use letters, digits, '_' or '-'")
        if self.name in self.needs:
            raise ValueError(f"stage {self.name!r} cannot need itself")
        names = [o.name for o in self.options]
        if len(set(names)) != len(names) or {"force", "recipe", "run_dir"} & set(names):
            raise ValueError(
                f"stage {self.name!r}: option names must be distinct and not force/recipe/run_dir"
            )

    def function(self) -> Callable[..., Any]:
        return _resolve(self.run, f"stage {self.name!r} function")

    def input_hashes(self, recipe: Any) -> dict[str, Any]:
        return {} if self.inputs is None else _resolve(self.inputs, f"stage {self.name!r} inputs")(recipe)

    def bind(self, options: dict[str, Any]) -> dict[str, Any]:
        """The stage function's keyword arguments: declared defaults updated with ``options``."""
        known = {o.name: o for o in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            listed = ", ".join(known) or "none"
            raise ValueError(f"stage {self.name!r} has no option(s) {unknown}; its options: {listed}")
        return {name: options.get(name, o.default) for name, o in known.items()}

    def reruns(self, bound: dict[str, Any]) -> bool:
        return any(o.reruns and bound[o.name] for o in self.options)


STAGES: Registry[Stage] = Registry("stage")
_loaded = False


def register(stage: Stage) -> Stage:
    """Register ``stage`` under its name; returns it (so a module can write ``STAGE = register(...)``)."""
    return STAGES.register(stage.name)(stage)


def load_stages() -> list[Stage]:
    """Every registered stage, after loading the ``tunelab.stages`` entry points (once per process)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for ep in metadata.entry_points(group=ENTRY_POINTS):
            obj = ep.load()
            if isinstance(obj, Stage) and obj.name not in STAGES:
                register(obj)
    return _in_pipeline_order([STAGES.get(n) for n in STAGES.names()])


def _in_pipeline_order(stages: list[Stage]) -> list[Stage]:
    """Each stage after the stages it needs (then by name): data, train, evaluate, ..."""
    done: list[Stage] = []
    pending = list(stages)
    while pending:
        ready = [s for s in pending if all(n in {d.name for d in done} or n not in STAGES for n in s.needs)]
        nxt = ready[0] if ready else pending[0]  # a cycle: keep going rather than hang
        done.append(nxt)
        pending.remove(nxt)
    return done


def get_stage(name: str) -> Stage:
    load_stages()
    if name not in STAGES:  # no dotted-path fallback: a stage must be declared
        raise UnknownPluginError(f"unknown stage {name!r}; known: {', '.join(STAGES.names()) or '(none)'}")
    return STAGES.get(name)


def import_plugins(modules: list[str]) -> list[str]:
    """Import a recipe's ``plugins`` (they register stages, losses, metrics...); return the problems."""
    problems = []
    for i, name in enumerate(modules):
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure of the user's module is a recipe problem, with its key
            problems.append(f"plugins.{i}: cannot import {name!r}: {type(exc).__name__}: {exc}")
    return problems


def _resolve(target: Callable[..., Any] | str, what: str) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownPluginError(f"cannot import {what} {target!r}: {exc}") from exc
