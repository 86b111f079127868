"""``tune``: prepare the data once, run trials (in this process and N-1 helpers), write the results.

Several machines (or shells) join one study by running the same recipe against a shared
``search.storage``; each process runs trials until the study holds ``search.n_trials`` finished ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tunelab.config import Recipe, RecipeError, dump_recipe
from tunelab.runs import RunDir, atomic_write_text
from tunelab.search.space import check_space, default_params, sample
from tunelab.search.study import (
    FINISHED,
    finished_trials,
    objective,
    open_study,
    require_optuna,
    search_config,
    search_dir,
)
from tunelab.search.trial import run_trial


def tune(recipe: Recipe, workers: int = 1) -> dict[str, Any]:
    """Run the recipe's search; return the summary also written to ``search/summary.json``."""
    from tunelab.pipeline import run_stage
    from tunelab.search.report import write_reports

    if workers < 1:
        raise ValueError(f"--workers must be at least 1 (got {workers})")
    cfg = search_config(recipe)
    check_space(recipe, cfg)
    objective(recipe)  # an unknown task fails here, before any data work
    require_optuna()
    run_stage("data", recipe)  # once; every trial links to this data/
    run_dir = RunDir(recipe.run_dir_path())
    folder = search_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with run_dir.stage("search") as info:
        study = open_study(recipe, run_dir, index=0)  # before the helpers, so they join rather than race
        if cfg.enqueue_default:
            study.enqueue_trial(
                default_params(recipe, cfg), user_attrs={"recipe_default": True}, skip_if_exists=True
            )
        helpers = _start_helpers(recipe, folder, workers - 1)
        try:
            optimize(study, recipe, run_dir)
        except BaseException:  # Ctrl-C or a failing trial here: the helpers stop too
            for proc, _ in helpers:
                proc.terminate()
                proc.wait()
            raise
        failed = [str(log) for proc, log in helpers if proc.wait() != 0]
        if failed:
            raise RuntimeError(f"search worker(s) failed; see {', '.join(failed)}")
        summary = write_reports(study, recipe, run_dir)
        if summary["best"] is None:
            raise RuntimeError(f"no trial completed; see the error column of {folder / 'trials.csv'}")
        info.update(best=summary["best"], trials=summary["trials"])
    return summary


def join(recipe: Recipe, index: int) -> None:
    """A helper worker: join the study and run trials until it holds enough (no data work, no reports)."""
    run_dir = RunDir(recipe.run_dir_path())
    optimize(open_study(recipe, run_dir, index=index), recipe, run_dir)


def optimize(study: Any, recipe: Recipe, run_dir: RunDir) -> None:
    """Run trials in this process until the study holds ``n_trials`` finished ones (or ``timeout``)."""
    optuna = require_optuna()
    cfg = search_config(recipe)
    metric, _ = objective(recipe)
    remaining = cfg.n_trials - finished_trials(study)
    if remaining <= 0:
        return  # a rerun of a finished search only rewrites the reports

    def one_trial(trial: Any) -> float:
        return run_trial(trial, recipe, run_dir, sample(trial, cfg), metric)

    states = tuple(optuna.trial.TrialState[s] for s in FINISHED)
    study.optimize(
        one_trial,
        n_trials=remaining,
        timeout=cfg.timeout,
        catch=(RecipeError,),  # an impossible combination fails its trial, not the search
        callbacks=[optuna.study.MaxTrialsCallback(cfg.n_trials, states=states)],  # other workers count too
        gc_after_trial=True,
    )


def _start_helpers(recipe: Recipe, folder: Path, n: int) -> list[tuple[subprocess.Popen, Path]]:
    if n == 0:
        return []
    path = folder / "recipe.yaml"
    atomic_write_text(path, dump_recipe(recipe))  # the resolved recipe, overrides included
    helpers = []
    for index in range(1, n + 1):
        log = folder / f"worker-{index}.log"
        with log.open("w", encoding="utf-8") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tunelab.search.worker", str(path), str(index)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )
        helpers.append((proc, log))
    return helpers
