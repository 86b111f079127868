"""Gradual unfreezing (Howard & Ruder 2018): train the head first, then one layer group more each time.

Groups, top first: the head (everything above the layer stack), layer L-1, ..., layer 0, embeddings.
Only parameters that were trainable when the strategy was built take part (an adapter or
``model.freeze`` decides that), and groups with none of them are skipped. Frozen parameters stay in
the optimiser with ``requires_grad`` False: they get no gradient, so AdamW neither moves nor decays them.

Which groups are open is a function of ``global_step`` alone, so a resumed run opens the same ones.
"""

from __future__ import annotations

from torch import nn

from tunelab.config.train import GradualUnfreezingSpec
from tunelab.models.freeze import layer_groups
from tunelab.train.callbacks import Callback, FitContext, Plan
from tunelab.train.strategies.base import STRATEGIES, StrategySetup


class GradualUnfreezing(Callback):
    def __init__(self, groups: list[list[nn.Parameter]], every: int | str) -> None:
        self.groups = groups
        self.every = every
        self.interval = every if isinstance(every, int) else 0

    def open_groups(self, step: int) -> int:
        """How many groups (from the top) train during the step after ``step`` steps are done."""
        return min(len(self.groups), 1 + step // self.interval)

    def _apply(self, step: int) -> None:
        n = self.open_groups(step)
        for k, group in enumerate(self.groups):
            for p in group:
                p.requires_grad_(k < n)

    def on_fit_start(self, ctx: FitContext) -> None:
        if self.every == "epoch":
            self.interval = ctx.steps_per_epoch
        self._apply(ctx.state.global_step)

    def on_step_start(self, ctx: FitContext) -> None:
        self._apply(ctx.state.global_step)


@STRATEGIES.register("gradual_unfreezing")
def gradual_unfreezing(spec: GradualUnfreezingSpec, setup: StrategySetup) -> Plan:
    groups = [[p for _, p in g if p.requires_grad] for g in layer_groups(setup.model).top_down()]
    return Plan(callbacks=[GradualUnfreezing([g for g in groups if g], spec.every)])
