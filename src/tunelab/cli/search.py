"""Verbs that search before (or instead of) one training run: ``tune`` and ``rank-models``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from tunelab.cli.common import OverridesArg, RecipeArg, friendly, load, say

# Each option is a shorthand for a ``search.*`` override, so the recipe stays the one source of truth.
TrialsOpt = Annotated[int | None, typer.Option("--n-trials", help="finished trials the study should hold")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="seconds after which no trial starts")]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="processes on this machine; more machines join through --storage")
]
StorageOpt = Annotated[str | None, typer.Option("--storage", help="optuna storage URL shared by all workers")]
StudyOpt = Annotated[str | None, typer.Option("--study-name", help="default the run name")]
CandidatesOpt = Annotated[
    str | None, typer.Option("--candidates", help="comma-separated models; default search.candidates")
]


@friendly
def tune(
    recipe: RecipeArg,
    overrides: OverridesArg = None,
    n_trials: TrialsOpt = None,
    timeout: TimeoutOpt = None,
    workers: WorkersOpt = 1,
    storage: StorageOpt = None,
    study_name: StudyOpt = None,
) -> None:
    """Search the recipe's search.space with optuna; write search/best_recipe.yaml.

    Run the same command in more shells or machines (sharing --storage) to add workers to one study.
    """
    from tunelab.search import tune as run_search

    shorthand = {"n_trials": n_trials, "timeout": timeout, "storage": storage, "study_name": study_name}
    extra = [f"search.{k}={json.dumps(v)}" for k, v in shorthand.items() if v is not None]  # JSON is YAML
    r = load(recipe, [*(overrides or []), *extra])
    summary = run_search(r, workers=workers)
    _show_search(summary, r.run_dir_path())


@friendly
def rank_models(recipe: RecipeArg, overrides: OverridesArg = None, candidates: CandidatesOpt = None) -> None:
    """Score candidate base models on a sample of the run's data, before fine-tuning any of them."""
    from tunelab.pipeline import run_stage
    from tunelab.runs import RunDir
    from tunelab.search.ranking import rank_models as rank

    r = load(recipe, overrides)
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    run_stage("data", r)  # the sample comes from the prepared splits
    ranking = rank(r, RunDir(r.run_dir_path()), names)
    _show_ranking(ranking)
    say("wrote ", (str(r.run_dir_path() / "metrics" / "model_ranking.json"), "bold"))


def _show_search(summary: dict[str, Any], run_dir) -> None:
    best, default = summary["best"], summary["default"]
    counts = ", ".join(f"{n} {state}" for state, n in summary["trials"].items())
    say(("search: done", "green"), f" {counts}; {summary['direction']} validation {summary['metric']}")
    if default is not None and default["value"] is not None:
        say(f"  recipe's own values (trial {default['number']}): {default['value']:.4f}")
    say(f"  best (trial {best['number']}): {best['value']:.4f} with {best['params']}")
    others = "trials.csv, plots.html" if summary["plots"] else "trials.csv; no plots: pip install plotly"
    say("wrote ", (str(run_dir / "search" / "best_recipe.yaml"), "bold"), f" ({others})")


def _show_ranking(ranking: dict[str, Any]) -> None:
    from rich.table import Table

    better = "higher" if ranking["higher_is_better"] else "lower"
    table = Table(title=f"{ranking['metric']} on {ranking['eval_rows']} validation rows ({better} is better)")
    table.add_column("rank", justify="right", no_wrap=True)
    table.add_column("model", overflow="fold")  # a folder path must stay readable in full
    for col in (ranking["metric"], "parameters", "tokens/s", "seconds"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    for c in ranking["candidates"]:
        score = "failed" if c["score"] is None else f"{c['score']:.4f}"
        tps = "-" if c["tokens_per_s"] is None else f"{c['tokens_per_s']:,.0f}"
        table.add_row(str(c["rank"]), c["name"], score, _count(c["parameters"]), tps, f"{c['seconds']:.1f}")
    out = Console()  # the ranking is the answer: stdout
    out.print(table)
    for c in ranking["candidates"]:
        if c["error"]:
            out.print(Text.assemble((c["name"], "red"), f": {c['error']}"), highlight=False, soft_wrap=True)


def _count(n: int | None) -> str:
    """22.7M, 135K: parameter counts from tiny test models to billions."""
    if n is None:
        return "-"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
