"""Explanation methods, registered by name (like losses and strategies).

A method turns one :class:`~tunelab.explain.subject.Subject` into token scores toward the subject's
target (a class probability, or an answer's log-probability). Built-in methods register when their
module is imported; :func:`load_methods` imports them all. Another package adds one with
``@register(Method(...))`` in a module the recipe lists under ``plugins:``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunelab.registry import Registry

BUILTIN_MODULES = (
    "tunelab.explain.gradients",
    "tunelab.explain.perturbation",
    "tunelab.explain.sampling",
    "tunelab.explain.attention",
)
KINDS = ("classifier", "causal")


@dataclass
class Attribution:
    """One method's scores for one subject: one per model token (0 where it does not apply)."""

    method: str
    token_scores: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  # e.g. integrated gradients' convergence delta
    seconds: float = 0.0


@dataclass(frozen=True)
class Method:
    """``fn(ctx, subject) -> Attribution``; ``kinds`` are the model kinds it explains."""

    name: str
    fn: Callable[..., Attribution]
    help: str
    kinds: tuple[str, ...] = KINDS
    extra: str | None = None  # the pip extra its library comes in (``tunelab[explain]``)
    attribution: bool = True  # False: a view (attention maps) that is not ranked or faithfulness-scored


METHODS: Registry[Method] = Registry("explanation method")
_loaded = False


def register(method: Method) -> Method:
    return METHODS.register(method.name)(method)


def load_methods() -> list[str]:
    """Import the built-in method modules (once); return every registered name."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    return METHODS.names()


def get_method(name: str) -> Method:
    load_methods()
    return METHODS.get(name)
