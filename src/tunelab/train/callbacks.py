"""Extension points of the training loop: strategies plug in here instead of editing the loop.

A strategy may
- shape the optimiser's parameter groups (``param_groups``: layer-wise learning rates),
- choose the batch order (``batch_order``: curriculum learning),
- act at fixed points of the loop (``Callback``: gradual unfreezing, early stopping, pruning).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from tunelab.config.train import TrainConfig

# (lengths, batch_size, seed, epoch, group_by_length) -> list of index batches for that epoch
BatchOrder = Callable[[list[int], int, int, int, bool], list[list[int]]]
# (model, train config) -> optimiser parameter groups (dicts with "params", optional "lr", "weight_decay")
ParamGroups = Callable[[torch.nn.Module, TrainConfig], list[dict[str, Any]]]


@dataclass
class FitContext:
    """What a callback can see and change. ``stop = True`` ends training after this step."""

    model: torch.nn.Module  # unwrapped (no DDP wrapper)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: Any  # TrainerState
    cfg: TrainConfig
    total_steps: int
    steps_per_epoch: int
    features: list[dict[str, Any]] = field(default_factory=list)
    stop: bool = False
    stop_reason: str = ""


class Callback:
    """Hooks called by ``fit``; every hook is optional. Callbacks must be deterministic in the
    step number (not in wall time), so that a resumed run behaves like an uninterrupted one."""

    def on_fit_start(self, ctx: FitContext) -> None:
        """After the optimiser is built and a checkpoint (if any) restored."""

    def on_step_start(self, ctx: FitContext) -> None:
        """Before the forward pass of step ``ctx.state.global_step + 1``."""

    def on_step_end(self, ctx: FitContext, loss: float) -> None:
        """After the optimiser step; ``ctx.state.global_step`` is the step just done."""

    def on_evaluate(self, ctx: FitContext, metrics: dict[str, float]) -> None:
        """After a validation pass at ``ctx.state.global_step``."""


@dataclass
class Plan:
    """Everything strategies contribute to one ``fit`` call."""

    callbacks: list[Callback] = field(default_factory=list)
    batch_order: BatchOrder | None = None
    param_groups: ParamGroups | None = None
    metrics: list[str] = field(default_factory=list)  # validation metrics a strategy reads
    on_log: Callable[[dict[str, Any]], None] | None = None  # sees each train-log row (experiment tracking)
