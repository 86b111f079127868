"""The evaluate stage: test metrics for the tuned model and, side by side, the base model."""

from __future__ import annotations

from typing import Any

from transformers import set_seed

from tunelab.config import Recipe
from tunelab.evaluate.bootstrap import paired_bootstrap_classification
from tunelab.runs import RunDir, StageResult, atomic_write_json, atomic_write_jsonl
from tunelab.stages import fingerprint, load_labels, load_split, split_path
from tunelab.tasks import get_task
from tunelab.tasks.base import MODEL_INFO

# The figures that headline a comparison, per task, and whether higher is better.
HEADLINES = {
    "classification": {"accuracy": True, "macro_f1": True, "ece": False},
    "sft": {"perplexity": False, "rouge_l": True},
}


def run(recipe: Recipe, run_dir: RunDir, force: bool = False) -> StageResult:
    """Write ``metrics/eval.json`` (tuned) and ``metrics/comparison.json`` (base vs tuned)."""
    ev = recipe.evaluate
    model_info = run_dir.require(f"model/{MODEL_INFO}", "train")
    inputs = [
        split_path(run_dir, ev.split),
        model_info,
        run_dir.model / "adapter_model.safetensors",
        run_dir.model / "model.safetensors",
    ]
    fp = fingerprint(recipe, ("task", "model", "evaluate", "run"), inputs)
    if not force and run_dir.is_done("evaluate", fp) and (run_dir.metrics / "comparison.json").is_file():
        return StageResult(
            "evaluate", skipped=True, artifacts=["metrics/eval.json", "metrics/comparison.json"]
        )
    task = get_task(recipe.task)
    labels = load_labels(run_dir, recipe)
    rows = load_split(run_dir, ev.split)[: ev.max_examples]
    with run_dir.stage("evaluate", fp):
        set_seed(recipe.run.seed)
        tuned, tokenizer = task.load_tuned(run_dir.model, recipe, labels)
        tuned_metrics = task.evaluate(tuned, tokenizer, rows, recipe, labels)
        del tuned
        tuned_examples = tuned_metrics.pop("per_example", None)
        atomic_write_json(run_dir.metrics / "eval.json", {"split": ev.split, **tuned_metrics})
        if tuned_examples is not None:
            atomic_write_jsonl(
                run_dir.metrics / "predictions.jsonl", prediction_rows(rows, tuned_examples, labels)
            )
        comparison: dict[str, Any] = {"split": ev.split, "n_examples": len(rows)}
        if ev.compare_base:
            set_seed(recipe.run.seed)
            base, base_tok = task.load_base(recipe, labels)
            base_metrics = task.evaluate(base, base_tok, rows, recipe, labels)
            base_examples = base_metrics.pop("per_example", None)
            comparison.update(compare(recipe.task, base_metrics, tuned_metrics))
            if base_examples is not None and tuned_examples is not None:
                # Both models scored the same rows: a paired bootstrap gives the gain its own interval.
                comparison["paired_difference"] = paired_bootstrap_classification(
                    base_examples["gold"],
                    base_examples["pred"],
                    tuned_examples["pred"],
                    len(labels),
                    n_samples=ev.bootstrap_samples,
                    confidence=ev.confidence,
                    seed=recipe.run.seed,
                )
            if recipe.task == "classification":
                comparison["note"] = "base = the pretrained encoder with a new, untrained head (chance level)"
        else:
            comparison["tuned"] = headline(recipe.task, tuned_metrics)
        atomic_write_json(run_dir.metrics / "comparison.json", comparison)
    return StageResult(
        "evaluate",
        metrics=headline(recipe.task, tuned_metrics),
        artifacts=["metrics/eval.json", "metrics/comparison.json"],
    )


def prediction_rows(rows: list[dict[str, Any]], examples: dict[str, list], labels) -> list[dict[str, Any]]:
    """One line per test row: the text, the gold label, the prediction and its probability."""
    return [
        {"text": r["text"], "label": r["label"], "predicted": labels[p], "probability": round(prob, 6)}
        for r, p, prob in zip(rows, examples["pred"], examples["prob"], strict=True)
    ]


def headline(task: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in HEADLINES.get(task, {}) if k in metrics}


def compare(task: str, base: dict[str, Any], tuned: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side headline figures with the change and whether it is an improvement."""
    rows = {}
    for name, higher in HEADLINES.get(task, {}).items():
        if name not in base or name not in tuned:
            continue
        b, t = _value(base[name]), _value(tuned[name])
        rows[name] = {
            "base": base[name],
            "tuned": tuned[name],
            "delta": t - b,
            "improved": t > b if higher else t < b,
            "higher_is_better": higher,
        }
    return {"metrics": rows}


def _value(x: Any) -> float:
    return float(x["value"]) if isinstance(x, dict) else float(x)
