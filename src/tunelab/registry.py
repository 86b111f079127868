"""Named plug-ins (tasks, losses, metrics, strategies, ...) with a dotted-path fallback.

A recipe names a plug-in by its registered name (``focal``) or by a dotted path
(``mypkg.losses:MyLoss`` or ``mypkg.losses.MyLoss``); an unknown name lists the known ones.
A registry may also take plug-ins from an entry-point group: their names are known without
importing them (so validating a recipe stays cheap), and each is imported when first asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import metadata
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownPluginError(KeyError):
    """A name that is neither registered nor an importable dotted path."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """A mapping from names to plug-ins of one kind."""

    def __init__(self, kind: str, entry_points: str | None = None) -> None:
        self.kind = kind
        self.entry_points = entry_points
        self._items: dict[str, T] = {}

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self.entry_points is None:
            return {}
        return {ep.name: ep for ep in metadata.entry_points(group=self.entry_points)}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@LOSSES.register("focal")``."""

        def add(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._entry_points()))

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._entry_points()

    def get(self, name: str) -> T:
        """Return the plug-in called ``name``, importing a dotted path if it is not registered."""
        if name in self._items:
            return self._items[name]
        if (ep := self._entry_points().get(name)) is not None:
            obj = ep.load()
            self._items.setdefault(name, obj)  # the module may have registered it while loading
            return self._items[name]
        if "." in name or ":" in name:
            return _import_dotted(name, self.kind)
        known = ", ".join(self.names()) or "(none)"
        raise UnknownPluginError(
            f"unknown {self.kind} {name!r}; known: {known} (or give a dotted path such as 'pkg.module:Name')"
        )


def _import_dotted(path: str, kind: str):
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:  # `..` is a relative import
        raise UnknownPluginError(f"cannot import {kind} {path!r}: {exc}") from exc


# The registries that recipe validation checks names against before any heavy import.
TASKS: Registry = Registry("task", entry_points="tunelab.tasks")
