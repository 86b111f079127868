"""The evaluate stage: test metrics for the tuned model and, side by side, the base model and a
TF-IDF + linear baseline fitted on the same splits (see ``evaluate/baseline.py``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from tunelab.config import Recipe
from tunelab.evaluate.compare import columns, paired, verdict, verdict_metric
from tunelab.metrics.registry import Predictions, get_metric, interval
from tunelab.runs import RunDir, StageResult, atomic_write_json, atomic_write_jsonl
from tunelab.tasks import Task, get_task
from tunelab.tasks.base import MODEL_INFO

log = logging.getLogger("tunelab")
BASELINE_PREDICTIONS = "metrics/baseline_predictions.jsonl"


def run(recipe: Recipe, run_dir: RunDir) -> StageResult:
    """Write ``metrics/eval.json`` (tuned), ``predictions.jsonl`` and ``comparison.json`` (base,
    baseline and tuned side by side, with paired intervals and the verdict on the baseline)."""
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
    artifacts = ["metrics/eval.json", "metrics/predictions.jsonl", "metrics/comparison.json"]
    comparison: dict[str, Any] = {"split": ev.split, "n_examples": len(rows)}
    base_metrics = None
    if ev.compare_base:
        set_seed(recipe.run.seed)
        base, base_tok = task.load_base(recipe, labels)
        base_metrics, base_preds = task.evaluate(base, base_tok, rows, recipe, labels)
        del base
        comparison["paired_difference"] = paired(names, base_preds, tuned_preds, recipe)
        if task.base_note:
            comparison["note"] = task.base_note
    else:
        comparison["tuned"] = {k: tuned_metrics[k] for k in names if k in tuned_metrics}
    baseline = _baseline(task, recipe, run_dir, rows, labels, tuned_preds)
    summary = {k: tuned_metrics[k] for k in names if k in tuned_metrics}
    if isinstance(cal := tuned_metrics.get("calibration"), dict):  # temperature scaling, in one line
        summary["calibration"] = (
            f"T = {cal['temperature']:.3f}: ECE {cal['before']['ece']:.4f} -> {cal['after']['ece']:.4f}, "
            f"log loss {cal['before']['log_loss']:.4f} -> {cal['after']['log_loss']:.4f}"
        )
    if baseline is not None and "error" not in baseline:
        base_line_metrics, base_line_preds, info = baseline
        comparison["paired_vs_baseline"] = pairs = paired(names, base_line_preds, tuned_preds, recipe)
        comparison["baseline"] = {**info, "metrics": base_line_metrics}
        name = verdict_metric(task.headline, pairs)
        if name is not None:
            comparison["verdict"] = v = verdict(name, pairs[name], ev.confidence)
            summary["vs_baseline"] = _summary_verdict(v)
        atomic_write_jsonl(run_dir.path(BASELINE_PREDICTIONS), task.prediction_rows(rows, base_line_preds))
        artifacts.append(BASELINE_PREDICTIONS)
    else:
        run_dir.path(BASELINE_PREDICTIONS).unlink(missing_ok=True)  # none from an earlier setting
        if baseline is not None:
            comparison["baseline"] = baseline
            summary["baseline_error"] = baseline["error"]
    baseline_metrics = comparison.get("baseline", {}).get("metrics")
    metrics = columns(names, tuned_metrics, base_metrics, baseline_metrics)
    if metrics or ev.compare_base:
        comparison["metrics"] = metrics
    atomic_write_json(run_dir.metrics / "comparison.json", comparison)
    if recipe.train.tracking.backends():
        from tunelab.tracking import log_evaluation

        log_evaluation(recipe, run_dir, {k: tuned_metrics[k] for k in names if k in tuned_metrics})
    return StageResult("evaluate", metrics=summary, artifacts=artifacts)


def headline_names(task: Task, recipe: Recipe) -> list[str]:
    return list(dict.fromkeys((*task.headline, *recipe.evaluate.metrics)))


def _baseline(task: Task, recipe: Recipe, run_dir: RunDir, rows, labels, tuned: Predictions):
    """(metrics, predictions, info) of the TF-IDF baseline on ``rows``; None when off or the task has
    none; ``{"error": ...}`` when the data cannot fit one (a single class in train)."""
    from tunelab.evaluate.baseline import fit_baseline, has_baseline

    if not recipe.evaluate.baseline or not has_baseline(task):
        return None
    train = run_dir.split_rows("train")
    # tuning on the scored rows would flatter the baseline: then a hold-out of train tunes it
    validation = run_dir.split_rows("validation") if recipe.evaluate.split != "validation" else []
    try:
        fitted = fit_baseline(task, recipe, train, validation, rows, labels)
    except ValueError as e:
        log.warning("no TF-IDF baseline: %s", e)
        return {"error": str(e)}
    preds = fitted.predictions
    same = (
        np.array_equal(preds.gold, tuned.gold)
        if preds.kind != "values"
        else np.allclose(preds.gold, tuned.gold, rtol=1e-6, atol=1e-6)  # tuned targets went via float32
    )
    if len(preds) != len(tuned) or not same:
        raise RuntimeError("the baseline's rows do not line up with the tuned model's (a bug)")
    preds = replace(preds, gold=tuned.gold)  # the very same gold array: the paired rows agree exactly
    return score(task, preds, recipe), preds, fitted.info


def score(task: Task, preds: Predictions, recipe: Recipe) -> dict[str, Any]:
    """Figures of predictions made outside a model forward pass, as :meth:`Task.evaluate` reports a
    model's: the mean per-example loss, the task's details, headline metrics with intervals."""
    ev = recipe.evaluate
    out: dict[str, Any] = {
        "loss": float(task.losses_of(preds).mean()),
        "n_examples": len(preds),
        **task.details(preds, recipe),
    }
    for name in headline_names(task, recipe):
        if name not in out and get_metric(name).fn is not None:
            out[name] = interval(name, preds, ev.bootstrap_samples, ev.confidence, recipe.run.seed)
    return out


def _summary_verdict(v: dict[str, Any]) -> dict[str, Any]:
    """The verdict as one flat figure for the manifest and the CLI: tuned - baseline [low, high]."""
    d = v["difference"]
    return {
        "value": d["value"],
        "low": d.get("low"),
        "high": d.get("high"),
        "metric": v["metric"],
        "outcome": v["outcome"],
        "verdict": v["sentence"],
    }
