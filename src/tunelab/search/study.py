"""The optuna study behind a search: what it optimises, where it is stored, its sampler and pruner."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunelab.config import Recipe
from tunelab.config.search import PrunerConfig, SearchConfig
from tunelab.registry import Registry
from tunelab.runs import RunDir

SAMPLERS: Registry[Callable[[int], Any]] = Registry("search sampler")
PRUNERS: Registry[Callable[[PrunerConfig], Any]] = Registry("search pruner")
# Trial states that count towards n_trials. A failed trial does not, so another takes its place: a
# killed worker's trial (failed by the heartbeat), or an impossible combination of sampled values.
FINISHED = ("COMPLETE", "PRUNED")


def require_optuna():
    """Import optuna, or say which extra installs it."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("hyperparameter search needs optuna: pip install 'tunelab[search]'") from exc
    return optuna


@SAMPLERS.register("tpe")
def _tpe(seed: int):
    return require_optuna().samplers.TPESampler(seed=seed)


@SAMPLERS.register("random")
def _random(seed: int):
    return require_optuna().samplers.RandomSampler(seed=seed)


@PRUNERS.register("median")
def _median(cfg: PrunerConfig):
    return require_optuna().pruners.MedianPruner(
        n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_evaluations
    )


@PRUNERS.register("none")
def _no_pruning(cfg: PrunerConfig):
    return require_optuna().pruners.NopPruner()


def search_config(recipe: Recipe) -> SearchConfig:
    """The recipe's ``search`` section, or an error that says what to add."""
    if recipe.search is None or not recipe.search.space:
        raise ValueError(
            "search.space is empty: add a search section, e.g.\n"
            "search:\n  space:\n    train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}"
        )
    return recipe.search


def objective(recipe: Recipe) -> tuple[str, str]:
    """(validation metric, 'maximize' | 'minimize'): the search settings, else the train/task defaults."""
    from tunelab.tasks import get_task

    task = get_task(recipe.task)
    cfg = search_config(recipe)
    metric = cfg.metric or recipe.train.metric_for_best or task.default_metric
    direction = cfg.direction or ("maximize" if task.greater_is_better(metric) else "minimize")
    return metric, direction


def search_dir(run_dir: RunDir) -> Path:
    return run_dir.path("search")


def storage_url(recipe: Recipe, run_dir: RunDir) -> str:
    url = search_config(recipe).storage
    return url or f"sqlite:///{(search_dir(run_dir) / 'study.db').resolve()}"


def study_name(recipe: Recipe) -> str:
    return search_config(recipe).study_name or recipe.run.name


def open_study(recipe: Recipe, run_dir: RunDir, index: int = 0):
    """Create the study, or join it if another worker (or an earlier, killed search) made it.

    The sampler's seed is ``run.seed + index``, so a lone search is reproducible and helpers started
    by ``--workers`` draw different values; a process joining trials already running elsewhere (its
    own shell or machine) mixes in its process id for the same reason.
    """
    optuna = require_optuna()
    cfg = search_config(recipe)
    metric, direction = objective(recipe)
    url = storage_url(recipe, run_dir)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        try:
            study = optuna.create_study(
                storage=_storage(url),
                study_name=study_name(recipe),
                direction=direction,
                sampler=SAMPLERS.get(cfg.sampler)(recipe.run.seed + index),
                pruner=PRUNERS.get(cfg.pruner.name)(cfg.pruner),
                load_if_exists=True,
            )
            break
        except Exception as exc:  # two workers creating the tables at once: the loser retries
            racing = any(word in str(exc).lower() for word in ("lock", "exists", "unique"))
            if attempt == 4 or not racing:
                raise
            time.sleep(0.5 * (attempt + 1))
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {study.study_name!r} in {url} optimises in direction {study.direction.name.lower()}, "
            f"but this recipe asks {direction} ({metric}): set search.study_name to a new name"
        )
    if index == 0 and any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False)):
        study.sampler = SAMPLERS.get(cfg.sampler)(recipe.run.seed + os.getpid())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([metric])
    return study


def _storage(url: str):
    """An RDB storage; heartbeats let a live worker fail a killed worker's trial (a new one replaces it)."""
    optuna = require_optuna()
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # several processes share one file: wait for the write lock instead of failing at once
        engine = {"connect_args": {"timeout": 60}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120)


def finished_trials(study) -> int:
    return sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))
