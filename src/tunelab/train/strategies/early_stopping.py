"""Early stopping: end training when a validation metric has stopped improving.

After each evaluation the metric is compared with the best so far; ``patience`` evaluations in a
row without an improvement larger than ``min_delta`` set ``ctx.stop``. On resume the count is
rebuilt from the validation entries of the training history, so it matches an uninterrupted run.
"""

from __future__ import annotations

from tunelab.config.train import EarlyStoppingSpec
from tunelab.train.callbacks import Callback, FitContext, Plan
from tunelab.train.strategies.base import STRATEGIES, StrategySetup


class EarlyStopping(Callback):
    def __init__(self, metric: str, higher_is_better: bool, patience: int, min_delta: float = 0.0) -> None:
        self.metric = metric
        self.higher = higher_is_better
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0

    def update(self, value: float, step: int) -> bool:
        """Record one evaluation; True when training should stop."""
        gain = (value - self.best if self.higher else self.best - value) if self.best is not None else None
        if gain is None or gain > self.min_delta:
            self.best, self.best_step, self.bad = value, step, 0
        else:
            self.bad += 1
        return self.bad >= self.patience

    def on_fit_start(self, ctx: FitContext) -> None:
        self.best, self.best_step, self.bad = None, None, 0
        for entry in ctx.state.history:
            if "validation" in entry:
                self.update(entry["validation"][self.metric], entry["step"])

    def on_evaluate(self, ctx: FitContext, metrics: dict[str, float]) -> None:
        if self.metric not in metrics:
            raise ValueError(f"early_stopping.metric {self.metric!r} is not a validation metric; "
                           f"choose one of {sorted(metrics)}")
        if self.update(metrics[self.metric], ctx.state.global_step):
            ctx.stop = True
            ctx.stop_reason = (
                f"early stopping: {self.metric} did not improve for {self.patience} evaluations "
                f"(best {self.best:.6g} at step {self.best_step})"
            )


@STRATEGIES.register("early_stopping")
def early_stopping(spec: EarlyStoppingSpec, setup: StrategySetup) -> Plan:
    metric = spec.metric or setup.cfg.metric_for_best or setup.task.default_metric
    higher = setup.task.greater_is_better(metric)
    return Plan(callbacks=[EarlyStopping(metric, higher, spec.patience, spec.min_delta)], metrics=[metric])
