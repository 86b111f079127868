"""One trial: the recipe with sampled values, trained in its own run folder on the parent's data."""

from __future__ import annotations

import gc
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from tunelab.config import Recipe, RecipeError
from tunelab.runs import RunDir, read_jsonl
from tunelab.search.space import with_params
from tunelab.search.study import require_optuna, search_dir


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def trial_dir(run_dir: RunDir, number: int) -> RunDir:
    return RunDir(search_dir(run_dir) / f"trial-{number}")


def run_trial(trial: Any, recipe: Recipe, run_dir: RunDir, params: dict[str, Any], metric: str) -> float:
    """Train the trial's recipe; return ``metric`` at the checkpoint the train stage kept.

    Raises ``optuna.TrialPruned`` when the pruner stopped it; an impossible combination of
    sampled values fails the trial (not the search) with the recipe's own message.
    """
    from tunelab.pipeline import open_run, run_stage
    from tunelab.search.pruning import PruningCallback

    optuna = require_optuna()
    folder = trial_dir(run_dir, trial.number)
    trial.set_user_attr("worker", worker_id())
    trial.set_user_attr("run_dir", str(folder.root.relative_to(run_dir.root)))
    try:
        trial_recipe = with_params(
            recipe, params, f"trial {trial.number}", output_dir=str(folder.root.parent), name=folder.root.name
        )
    except RecipeError as exc:
        trial.set_user_attr("error", str(exc))
        raise
    share_data(run_dir.data, folder.data)
    # the trial's data is the parent's: so is its record, which the train fingerprint builds on
    open_run(trial_recipe).set_stage_record("data", run_dir.stage_record("data") or {})
    pruning = PruningCallback(trial, metric)
    try:
        result = run_stage("train", trial_recipe, force=True, callbacks=[pruning])
    finally:
        shutil.rmtree(folder.checkpoints, ignore_errors=True)  # resume state is useless once a trial ends
        gc.collect()
    best_step = result.metrics["best_metric"]["step"]
    value = validation_at(folder, best_step, metric)
    trial.set_user_attr("steps", result.metrics["steps"])
    trial.set_user_attr("train_seconds", result.metrics["seconds"])
    trial.set_user_attr("best_step", best_step)
    if pruning.pruned_at is not None:
        trial.set_user_attr("pruned_at_validation", pruning.pruned_at)
        raise optuna.TrialPruned(f"pruned at validation {pruning.pruned_at}")
    return value


def share_data(parent: Path, child: Path) -> None:
    """Point the trial's ``data/`` at the parent's prepared data (a copy where links are not allowed)."""
    if child.is_symlink() or child.exists():
        if child.is_symlink() and child.resolve() == parent.resolve():
            return
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    child.parent.mkdir(parents=True, exist_ok=True)
    try:
        child.symlink_to(parent.resolve(), target_is_directory=True)
    except OSError:
        shutil.copytree(parent, child)


def validation_at(folder: RunDir, step: int, metric: str) -> float:
    """``metric`` from the validation logged at ``step`` in the trial's train log."""
    for entry in read_jsonl(folder.metrics / "train_log.jsonl"):
        if entry.get("step") == step and "validation" in entry:
            if metric not in entry["validation"]:
                raise ValueError(
                    f"search.metric {metric!r} is not a validation metric of this task; "
                    f"pick one of {sorted(entry['validation'])}"
                )
            return float(entry["validation"][metric])
    raise RuntimeError(f"{folder.metrics / 'train_log.jsonl'} has no validation at step {step}")
