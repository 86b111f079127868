"""What every verb shares: loading the recipe, and turning known errors into clean messages."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

console = Console(stderr=True)
F = TypeVar("F", bound=Callable)

RecipeArg = Annotated[Path, typer.Argument(help="the recipe YAML file", show_default=False)]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="overrides such as train.epochs=2", show_default=False)
]
ForceOpt = Annotated[bool, typer.Option("--force", help="redo the stage even if its outputs are current")]


def load(recipe: Path, overrides: list[str] | None):
    from tunelab.config import load_recipe

    return load_recipe(recipe, overrides or [])


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input: shown as a message, not a traceback."""
    from tunelab.config import RecipeError
    from tunelab.registry import UnknownPluginError
    from tunelab.runs import MissingArtifactError

    errors: list[type[BaseException]] = [
        RecipeError,
        MissingArtifactError,
        UnknownPluginError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        ImportError,
    ]
    return tuple(errors)


def friendly(fn: F) -> F:
    """Print user errors plainly and exit non-zero; ``TUNELAB_DEBUG=1`` shows the traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except user_errors() as exc:
            if os.environ.get("TUNELAB_DEBUG"):
                raise
            from tunelab.config import RecipeError

            code = 2 if isinstance(exc, RecipeError) else 1
            console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


def show_result(result) -> None:
    """One line per stage: skipped or done, with its headline figures."""
    if result.skipped:
        console.print(f"[dim]{result.stage}: up to date (use --force to redo)[/]")
        return
    figures = ", ".join(f"{k}={_fmt(v)}" for k, v in result.metrics.items() if not isinstance(v, list))
    console.print(f"[green]{result.stage}: done[/] {figures}", highlight=False)


def _fmt(v) -> str:
    if isinstance(v, dict) and "value" in v:
        lo, hi = v.get("low"), v.get("high")
        ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        return f"{v['value']:.4f}{ci}"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)
