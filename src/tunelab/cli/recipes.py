"""Verbs about recipes and models: ``validate``, ``init``, ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tunelab.cli.common import OverridesArg, RecipeArg, console, friendly, load


@friendly
def validate(recipe: RecipeArg, overrides: OverridesArg = None) -> None:
    """Check a recipe and list every problem with its key path."""
    r = load(recipe, overrides)
    console.print(f"[green]{recipe}: valid[/] (task {r.task}, model {r.model.name}, run {r.run_dir_path()})")


@friendly
def init(
    path: Annotated[Path, typer.Argument(help="where to write the starter recipe")] = Path("recipe.yaml"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing file")] = False,
) -> None:
    """Write a commented starter recipe."""
    from tunelab.config.starter import STARTER
    from tunelab.runs import atomic_write_text

    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    atomic_write_text(path, STARTER)
    console.print(f"wrote {path}: edit it, then `tunelab validate {path}` and `tunelab run {path}`")


def models() -> None:
    """List the bundled model aliases (they work offline)."""
    from rich.table import Table

    from tunelab.models.bundled import ALIASES, BUNDLED_MODELS, BundledAssetMissing, package_file

    table = Table(title="bundled models (any Hugging Face hub id or local folder works too)")
    for col in ("alias", "kind", "installed", "description"):
        table.add_column(col)
    for m in BUNDLED_MODELS.values():
        try:
            package_file(m.dist, m.rel)
            installed = "yes"
        except BundledAssetMissing:
            installed = f"no: {m.install_hint()}"
        names = ", ".join([m.alias, *(a for a, t in ALIASES.items() if t == m.alias)])
        table.add_row(names, m.kind, installed, m.description)
    Console().print(table)  # a listing belongs on stdout
