"""Validation passes and the best-model record: ``state.best_metric`` / ``best_step`` and ``best/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.batching import eval_batches
from tunelab.train.checkpoint import save_best

if TYPE_CHECKING:
    from tunelab.train.session import Session


def improves(value: float, best: float | None, higher_is_better: bool) -> bool:
    """Strictly better than ``best`` (a tie keeps the earlier step); anything beats no best yet."""
    return best is None or (value > best if higher_is_better else value < best)


def validate(run: Session) -> dict[str, float]:
    """The task's validation metrics on the validation split, under the run's precision."""
    inputs = run.inputs
    batches = eval_batches(inputs.val, inputs.task, inputs.tokenizer, run.cfg.eval_batch_size)
    with run.acc.autocast():
        # metric_for_best and the strategies' metrics may be a user's own (a dotted path)
        return inputs.task.validate(run.model, batches, extra=(run.metric, *run.plan.metrics))


def evaluate(run: Session) -> dict[str, float]:
    """Validate, log, run the ``on_evaluate`` hooks, and save ``best/`` if the metric improved."""
    state = run.state
    metrics = validate(run)
    run.log.append({"step": state.global_step, "validation": metrics})
    run.hooks("on_evaluate", metrics)
    value = metrics[run.metric]
    if improves(value, state.best_metric, run.higher_is_better):
        state.best_metric, state.best_step = value, state.global_step
        if run.acc.is_main_process:
            save_best(run.paths.checkpoints, run.raw, run.optimizer)
    return metrics


def last_validation(run: Session) -> dict[str, float]:
    """The latest validation figures in the history (a run resumed after its last evaluation)."""
    return next((h["validation"] for h in reversed(run.state.history) if "validation" in h), {})
