"""The evaluate stage: test metrics for the tuned model and, side by side, the base model."""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions, get_metric, higher_is_better, paired_difference
from tunelab.runs import RunDir, StageResult, atomic_write_json, atomic_write_jsonl
from tunelab.tasks import Task, get_task
from tunelab.tasks.base import MODEL_INFO


def run(recipe: Recipe, run_dir: RunDir) -> StageResult:
    """Write ``metrics/eval.json`` (tuned), ``predictions.jsonl`` and ``comparison.json`` (base vs tuned)."""
    from transformers import set_seed

    ev = recipe.evaluate
    run_dir.require(f"model/{MODEL_INFO}", "train")
    task = get_task(recipe.task)
    labels = run_dir.labels() if task.has_labels else None
    rows = run_dir.split_rows(ev.split)[: ev.max_examples]
    set_seed(recipe.run.seed)
    tuned, tokenizer = task.load_tuned(run_dir.model, recipe, labels)
    tuned_metrics, tuned_preds = task.evaluate(tuned, tokenizer, rows, recipe, labels)
    del tuned
    atomic_write_json(run_dir.metrics / "eval.json", {"split": ev.split, **tuned_metrics})
    atomic_write_jsonl(run_dir.metrics / "predictions.jsonl", task.prediction_rows(rows, tuned_preds))
    names = headline_names(task, recipe)
    comparison: dict[str, Any] = {"split": ev.split, "n_examples": len(rows)}
    if ev.compare_base:
        set_seed(recipe.run.seed)
        base, base_tok = task.load_base(recipe, labels)
        base_metrics, base_preds = task.evaluate(base, base_tok, rows, recipe, labels)
        comparison["metrics"] = compare(names, base_metrics, tuned_metrics)
        comparison["paired_difference"] = paired(names, base_preds, tuned_preds, recipe)
        if task.base_note:
            comparison["note"] = task.base_note
    else:
        comparison["tuned"] = {k: tuned_metrics[k] for k in names if k in tuned_metrics}
    atomic_write_json(run_dir.metrics / "comparison.json", comparison)
    if recipe.train.tracking.backends():
        from tunelab.tracking import log_evaluation

        log_evaluation(recipe, run_dir, {k: tuned_metrics[k] for k in names if k in tuned_metrics})
    return StageResult(
        "evaluate",
        metrics={k: tuned_metrics[k] for k in names if k in tuned_metrics},
        artifacts=["metrics/eval.json", "metrics/predictions.jsonl", "metrics/comparison.json"],
    )


def headline_names(task: Task, recipe: Recipe) -> list[str]:
    return list(dict.fromkeys((*task.headline, *recipe.evaluate.metrics)))


def compare(names: list[str], base: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side headline figures with the change and whether it is an improvement."""
    rows = {}
    for name in names:
        if name not in base or name not in tuned:
            continue
        higher = higher_is_better(name)
        b, t = _value(base[name]), _value(tuned[name])
        rows[name] = {
            "base": base[name],
            "tuned": tuned[name],
            "delta": t - b,
            "improved": t > b if higher else t < b,
            "higher_is_better": higher,
        }
    return rows


def paired(names: list[str], base: Predictions, tuned: Predictions, recipe: Recipe) -> dict[str, Any]:
    """Both models scored the same rows: a paired bootstrap gives each gain its own interval."""
    ev = recipe.evaluate
    return {
        name: paired_difference(name, base, tuned, ev.bootstrap_samples, ev.confidence, recipe.run.seed)
        for name in names
        if get_metric(name).fn is not None and len(base) == len(tuned)
    }


def _value(x: Any) -> float:
    return float(x["value"]) if isinstance(x, dict) else float(x)
