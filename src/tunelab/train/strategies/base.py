"""The strategy registry, what a strategy sees when it is built, and merging strategies into one Plan."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from tunelab.config.train import TrainConfig
from tunelab.registry import Registry
from tunelab.train.callbacks import Plan

# (spec, setup) -> the Plan parts this strategy adds. ``spec`` is the validated recipe entry.
StrategyFactory = Callable[[Any, "StrategySetup"], Plan]

STRATEGIES: Registry[StrategyFactory] = Registry("strategy")
BUILTIN = ("curriculum", "early_stopping", "layerwise_lr", "unfreezing")


@dataclass
class StrategySetup:
    """What strategies may look at before training: the adapted model and the encoded train split."""

    model: torch.nn.Module
    task: Any  # tunelab.tasks.Task
    tokenizer: Any
    features: list[dict[str, Any]]
    cfg: TrainConfig
    seed: int


def build_plan(specs: list[Any], setup: StrategySetup) -> Plan:
    """One Plan from every ``train.strategies`` entry; two that both set the batch order (or the
    parameter groups) are an error, since only one can win."""
    for name in BUILTIN:  # registration side effects
        importlib.import_module(f"tunelab.train.strategies.{name}")
    plan, owner = Plan(), {}
    for spec in specs:
        part = STRATEGIES.get(spec.name)(spec, setup)
        plan.callbacks += part.callbacks
        plan.metrics += part.metrics
        for slot in ("batch_order", "param_groups"):
            if getattr(part, slot) is None:
                continue
            if slot in owner:
                raise ValueError(
                    f"train.strategies: {owner[slot]!r} and {spec.name!r} both set the {slot}; keep one"
                )
            owner[slot] = spec.name
            setattr(plan, slot, getattr(part, slot))
    return plan
