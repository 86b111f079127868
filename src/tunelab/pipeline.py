"""Run stages in order over one run directory. Stages register here; the CLI and API call this."""

from __future__ import annotations

from collections.abc import Callable

from tunelab.config import Recipe, dump_recipe
from tunelab.registry import Registry
from tunelab.runs import RunDir, StageResult, atomic_write_text

StageFn = Callable[..., StageResult]
STAGES: Registry[StageFn] = Registry("stage")


# Built-in stages by dotted path, imported only when run (so `tunelab data` never imports torch training).
BUILTIN = {
    "data": "tunelab.data.stage:run",
    "train": "tunelab.train.stage:run",
    "evaluate": "tunelab.evaluate.stage:run",
}


def stage_function(name: str) -> StageFn:
    return STAGES.get(BUILTIN.get(name, name)) if name in BUILTIN or name in STAGES else STAGES.get(name)


def open_run(recipe: Recipe) -> RunDir:
    """The recipe's run directory, with the resolved recipe and the seed recorded."""
    run_dir = RunDir(recipe.run_dir_path())
    run_dir.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir.path("recipe.yaml"), dump_recipe(recipe))
    run_dir.update_manifest(seed=recipe.run.seed, task=recipe.task, model=recipe.model.name)
    return run_dir


def run_stage(name: str, recipe: Recipe, force: bool = False, resume: bool = False) -> StageResult:
    fn = stage_function(name)
    run_dir = open_run(recipe)
    if name == "train":
        return fn(recipe, run_dir, resume=resume, force=force)
    return fn(recipe, run_dir, force=force)


def run_pipeline(recipe: Recipe, force: bool = False, resume: bool = False) -> list[StageResult]:
    """Every stage the recipe enables, in order (fingerprints make later stages redo stale work)."""
    results = []
    for name in recipe.stages:
        result = run_stage(name, recipe, force=force, resume=resume)
        results.append(result)
    return results
