"""Rank candidate base models on a sample of the run's data, before fine-tuning any of them.

The task says how a frozen candidate is scored (``Task.rank``: a linear probe for classifiers, the
answer perplexity for causal LMs), which metric that is and whether higher is better; this module
samples the data, scores every candidate, and writes the ranked table with what each one cost.
"""

from __future__ import annotations

import random
import time
from typing import Any

from tunelab.config import Recipe
from tunelab.config.search import SearchConfig
from tunelab.metrics.registry import higher_is_better
from tunelab.runs import RunDir, atomic_write_json
from tunelab.tasks import Task, get_task


def rank_models(recipe: Recipe, run_dir: RunDir, candidates: list[str] | None = None) -> dict[str, Any]:
    """Score every candidate on the run's prepared data; write and return ``metrics/model_ranking.json``."""
    task = get_task(recipe.task)
    cfg = recipe.search or SearchConfig()
    names = list(dict.fromkeys(candidates or cfg.candidates or default_candidates(recipe, task.rank_kind)))
    rng = random.Random(recipe.run.seed)
    train = _sample(run_dir.split_rows("train"), cfg.rank_train_rows, rng)
    val = _sample(run_dir.split_rows("validation"), cfg.rank_eval_rows, rng)
    if not val:
        raise ValueError("the validation split is empty: set data.split.validation above 0 to rank models")
    labels = run_dir.labels() if task.has_labels else None
    entries = [_score_one(task, recipe, name, train, val, labels) for name in names]
    if all(e["error"] for e in entries):
        raise ValueError(
            "no candidate could be scored:\n" + "\n".join(f"  {e['name']}: {e['error']}" for e in entries)
        )
    higher = higher_is_better(task.rank_metric)
    sign = -1.0 if higher else 1.0
    entries.sort(key=lambda e: (e["score"] is None, sign * (e["score"] or 0.0)))  # failures last
    for i, e in enumerate(entries, 1):
        e["rank"] = i
    ranking = {
        "task": recipe.task,
        "metric": task.rank_metric,
        "higher_is_better": higher,
        "train_rows": len(train),
        "eval_rows": len(val),
        "seed": recipe.run.seed,
        "candidates": entries,
    }
    atomic_write_json(run_dir.metrics / "model_ranking.json", ranking)
    return ranking


def default_candidates(recipe: Recipe, kind: str) -> list[str]:
    """The recipe's model, then the bundled models that suit the task."""
    from tunelab.models.bundled import BUNDLED_MODELS, bundled_model

    own = bundled_model(recipe.model.name)
    bundled = [m.alias for m in BUNDLED_MODELS.values() if m.kind == kind and m is not own]
    return [recipe.model.name, *bundled]


def _score_one(task: Task, recipe: Recipe, name: str, train, val, labels) -> dict[str, Any]:
    from transformers import set_seed

    entry: dict[str, Any] = {
        "name": name,
        "score": None,
        "parameters": None,
        "tokens_per_s": None,
        "seconds": 0.0,
        "error": None,
    }
    candidate = recipe.model_copy(update={"model": recipe.model.model_copy(update={"name": name})})
    start = time.perf_counter()
    try:
        set_seed(recipe.run.seed)
        scored = task.rank(candidate, train, val, labels)
    except Exception as exc:  # one candidate that cannot load must not hide the others' scores
        entry["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    else:
        entry.update(
            score=scored.score,
            parameters=scored.parameters,
            tokens_per_s=scored.tokens / max(scored.seconds, 1e-9),
        )
    entry["seconds"] = round(time.perf_counter() - start, 2)
    return entry


def _sample(rows: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    return rows if len(rows) <= n else rng.sample(rows, n)
