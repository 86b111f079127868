"""Verbs that run the pipeline or one stage: ``run``, ``data``, ``train``, ``evaluate``."""

from __future__ import annotations

from typing import Annotated

import typer

from tunelab.cli.common import ForceOpt, OverridesArg, RecipeArg, console, friendly, load, show_result

ResumeOpt = Annotated[bool, typer.Option("--resume", help="continue training from the last checkpoint")]


@friendly
def run(
    recipe: RecipeArg, overrides: OverridesArg = None, force: ForceOpt = False, resume: ResumeOpt = False
):
    """Run every stage the recipe enables: data -> train -> evaluate."""
    from tunelab.pipeline import run_pipeline

    r = load(recipe, overrides)
    for result in run_pipeline(r, force=force, resume=resume):
        show_result(result)
    console.print(f"run directory: [bold]{r.run_dir_path()}[/]")


@friendly
def data(recipe: RecipeArg, overrides: OverridesArg = None, force: ForceOpt = False):
    """Load, clean, deduplicate and split the data into the run directory."""
    _one("data", recipe, overrides, force)


@friendly
def train(
    recipe: RecipeArg, overrides: OverridesArg = None, force: ForceOpt = False, resume: ResumeOpt = False
):
    """Fine-tune the model on the run's prepared data."""
    _one("train", recipe, overrides, force, resume)


@friendly
def evaluate(recipe: RecipeArg, overrides: OverridesArg = None, force: ForceOpt = False):
    """Score the fine-tuned model (and the base model) on the test split."""
    _one("evaluate", recipe, overrides, force)


def _one(name: str, recipe, overrides, force: bool, resume: bool = False) -> None:
    from tunelab.pipeline import run_stage

    show_result(run_stage(name, load(recipe, overrides), force=force, resume=resume))
