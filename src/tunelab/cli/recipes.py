"""Verbs about recipes and models: ``validate``, ``init``, ``models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tunelab.cli.common import OverridesArg, RecipeArg, friendly, load, say


@friendly
def validate(recipe: RecipeArg, overrides: OverridesArg = None) -> None:
    """Check a recipe and list every problem with its key path.

    First the schema; then what is knowable without training: data files, formats and columns,
    labels, the model and its fit to the task, cleaning-step, plug-in and metric names.
    """
    from tunelab.config import RecipeError
    from tunelab.preflight import check, key_lines

    r = load(recipe, overrides)
    problems, notes = check(r, key_lines(recipe))
    if not problems:
        say((f"{recipe}: valid", "green"), f" (task {r.task}, model {r.model.name}, run {r.run_dir_path()})")
    for note in notes:  # what could not be checked (a hub id offline): after "valid", or before the error
        say(("  note: ", "dim"), note, highlight=False)
    if problems:
        raise RecipeError(str(recipe), problems)


@friendly
def init(
    path: Annotated[Path, typer.Argument(help="where to write the starter recipe")] = Path("recipe.yaml"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing file")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="a data file (jsonl, csv, tsv, parquet): fit the task, columns and labels to it",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a commented starter recipe (fitted to your data file with --data)."""
    from tunelab.cli.datafit import starter_for
    from tunelab.config.starter import STARTER
    from tunelab.runs import atomic_write_text

    if path.is_dir():
        example = path / "recipe.yaml"
        raise IsADirectoryError(f"{path} is a folder: name a file, e.g. `tunelab init {example}`")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    found = None  # what --data told
    text = STARTER
    if data is not None:
        text, found = starter_for(data)
    atomic_write_text(path, text)
    if found is not None:
        columns = ", ".join(f"{k}: {v}" for k, v in found.columns.items()) or "as named"
        names = found.labels or []
        more = f", ... ({len(names) - 10} more)" if len(names) > 10 else ""
        labels = f", labels {', '.join(names[:10])}{more}" if names else ""
        say(f"fitted to {data}: task {found.task}, columns {columns}{labels}", highlight=False)
    say(f"wrote {path}: edit it, then `tunelab validate {path}` and `tunelab run {path}`", highlight=False)


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
