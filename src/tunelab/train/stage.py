"""The train stage: load the base model, adapt it, fit it, save it in ``save_pretrained`` form."""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe, dump_recipe
from tunelab.runs import RunDir, StageResult, atomic_dir, atomic_write_json, atomic_write_text
from tunelab.train.callbacks import Callback


def run(
    recipe: Recipe, run_dir: RunDir, resume: bool = False, callbacks: list[Callback] | None = None
) -> StageResult:
    """Fine-tune the recipe's model on ``data/train.jsonl``; write ``model/`` and metrics.

    ``callbacks`` are added to the training loop (hyperparameter search uses them for pruning).
    Every process trains under ``accelerate launch``; only the main one writes.
    """
    from accelerate import PartialState
    from transformers import set_seed

    from tunelab.models.adapters import apply_adapter, count_parameters
    from tunelab.models.freeze import freeze
    from tunelab.tasks import get_task
    from tunelab.tasks.base import MODEL_INFO
    from tunelab.tasks.windows import grouped_rows
    from tunelab.tracking import open_tracker
    from tunelab.train.loop import fit
    from tunelab.train.session import FitInputs, FitPaths
    from tunelab.train.strategies import StrategySetup, build_plan

    task = get_task(recipe.task)
    labels = run_dir.labels() if task.has_labels else None
    set_seed(recipe.run.seed)
    model, tokenizer = task.load_base(recipe, labels)
    base_path = getattr(model, "name_or_path", recipe.model.name)
    model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    freeze(model, recipe.model.freeze)
    trainable, total = count_parameters(model)
    train = task.encode(run_dir.split_rows("train"), tokenizer, recipe, labels)
    val = task.encode(run_dir.split_rows("validation"), tokenizer, recipe, labels)
    task.use_loss(recipe.train.loss, train, labels)
    windows = len(train)  # model.long_text: chunk reads a long row as several windows
    examples = grouped_rows(train) or windows
    if recipe.train.packing:
        train = task.pack(train, recipe.model.max_length)
    setup = StrategySetup(model, task, tokenizer, train, recipe.train, recipe.run.seed)
    plan = build_plan(recipe.train.strategies, setup)
    plan.callbacks += list(callbacks or [])
    run_dir.metrics.mkdir(parents=True, exist_ok=True)
    tracker = None
    if PartialState().is_main_process and recipe.train.tracking.backends():
        tracker = open_tracker(recipe, run_dir, _resume_step(run_dir) if resume else None)
    plan.on_log = tracker.log_entry if tracker else None
    try:
        result = fit(
            FitInputs(model, tokenizer, task, train, val),
            recipe.train,
            recipe.run.seed,
            FitPaths(run_dir.checkpoints, run_dir.metrics / "train_log.jsonl"),
            resume=resume,
            plan=plan,
        )
    except BaseException:
        if tracker:
            tracker.close()
        raise
    if not PartialState().is_main_process:  # under accelerate launch only rank 0 writes
        return StageResult("train", metrics={"rank": PartialState().process_index})
    learned = task.after_fit(model, val, tokenizer, recipe)  # e.g. a decision threshold
    with atomic_dir(run_dir.model) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / MODEL_INFO, {**task.model_info(recipe, str(base_path), labels), **learned})
        atomic_write_text(tmp / "recipe.yaml", dump_recipe(recipe))
    summary: dict[str, Any] = {
        "best_metric": {result.metric: result.state.best_metric, "step": result.state.best_step},
        "final_validation": result.final_validation,
        "steps": result.state.global_step,
        "seconds": round(result.seconds, 2),
        "train_tokens_per_s": round(result.train_tokens_per_s, 1),
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "precision": result.precision,
        "speed": result.speed,  # the training-speed switches as resolved, and the thread counts
        "parameters": {"trainable": trainable, "total": total},
        "resumed_from_step": result.resumed_from,
        "train_examples": examples,
        **({"train_windows": windows} if grouped_rows(train) is not None else {}),
        "train_rows": len(train),  # packed rows with train.packing, else the examples
        "stopped": result.state.stopped or None,
        "validation_examples": grouped_rows(val) or len(val),
        **({"learned": learned} if learned else {}),
    }
    atomic_write_json(run_dir.metrics / "train_summary.json", summary)
    if tracker:
        tracker.finish(summary, [run_dir.metrics / "train_summary.json"])
    return StageResult("train", metrics=summary, artifacts=["model/", "metrics/train_log.jsonl"])


def _resume_step(run_dir: RunDir) -> int | None:
    """The step of the checkpoint a resume starts from (tracking skips what it logged before)."""
    import json

    from tunelab.train.checkpoint import STATE, latest_checkpoint

    ckpt = latest_checkpoint(run_dir.checkpoints)
    if ckpt is None:
        return None
    return int(json.loads((ckpt / STATE).read_text(encoding="utf-8"))["trainer"]["global_step"])
