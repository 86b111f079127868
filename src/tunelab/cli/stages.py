"""Verbs that run the pipeline (``run``) or one stage: one verb per registered stage, made here.

A stage's verb takes the recipe, ``key=value`` overrides, ``--force`` and the stage's own options
(``Stage.options`` with ``cli=True``), so a new stage gets ``tunelab <stage> RECIPE`` for free.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tunelab.cli.common import ForceOpt, OverridesArg, RecipeArg, friendly, load, show_result
from tunelab.stages import Stage

ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue training from the last checkpoint")]


@friendly
def run(
    recipe: RecipeArg, overrides: OverridesArg = None, force: ForceOpt = False, resume: ResumeOpt = False
):
    """Run every stage the recipe lists (by default data -> train -> evaluate)."""
    from tunelab.cli.summary import show_summary
    from tunelab.pipeline import run_pipeline

    r = load(recipe, overrides)
    results = run_pipeline(r, force=force, resume=resume)
    for result in results:
        show_result(result)
    show_summary(results, Path(r.run_dir_path()))
    fail_on_gates(results)


def fail_on_gates(results) -> None:
    """Exit non-zero when a stage's gates were breached (the audit's), naming each breach."""
    from tunelab.cli.common import say

    failed = [(r.stage, r.metrics["gates_failed"]) for r in results if r.metrics.get("gates_failed")]
    for stage, breaches in failed:
        say((f"{stage} gates failed:", "bold red"))
        for breach in breaches.split("; "):
            say(f"  - {breach}")
    if failed:
        raise typer.Exit(3)


def stage_verb(stage: Stage) -> Callable[..., None]:
    """A typer command for ``stage``: its signature is built from the stage's declared options."""
    flags = [o for o in stage.options if o.cli]

    def verb(recipe: Path, overrides: list[str] | None = None, force: bool = False, **options: Any) -> None:
        from tunelab.cli.summary import show_summary
        from tunelab.pipeline import run_stage

        r = load(recipe, overrides)
        result = run_stage(stage.name, r, force=force, **options)
        show_result(result)
        show_summary([result], Path(r.run_dir_path()))
        fail_on_gates([result])

    params = [
        inspect.Parameter("recipe", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=RecipeArg),
        inspect.Parameter(
            "overrides", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=OverridesArg
        ),
        inspect.Parameter("force", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=ForceOpt),
    ]
    for o in flags:
        kind = o.type | None if o.default is None else o.type
        annotation = Annotated[kind, typer.Option(o.flag, help=o.help)]
        params.append(
            inspect.Parameter(
                o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=annotation
            )
        )
    verb.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    verb.__annotations__ = {p.name: p.annotation for p in params}
    verb.__name__ = stage.name.replace("-", "_")
    verb.__doc__ = stage.help
    return friendly(verb)
