"""Report each validation of a trial to optuna, and stop the training loop when optuna prunes it."""

from __future__ import annotations

from typing import Any

from tunelab.train.callbacks import Callback, FitContext


class PruningCallback(Callback):
    """``on_evaluate`` -> ``trial.report``; a prune sets ``ctx.stop`` so the loop ends cleanly.

    Trials are compared at their n-th validation (not their optimiser step): steps differ between
    trials with different batch sizes, evaluations once an epoch do not.
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.evaluations = 0
        self.pruned_at: int | None = None  # the evaluation at which the trial was pruned

    def on_evaluate(self, ctx: FitContext, metrics: dict[str, float]) -> None:
        if self.metric not in metrics:
            raise ValueError(
                f"search.metric {self.metric!r} is not a validation metric of this task; "
                f"pick one of {sorted(metrics)}"
            )
        self.evaluations += 1
        self.trial.report(float(metrics[self.metric]), self.evaluations)
        if self.trial.should_prune():
            self.pruned_at = self.evaluations
            ctx.stop = True
            ctx.stop_reason = f"pruned by the search at validation {self.evaluations}"
