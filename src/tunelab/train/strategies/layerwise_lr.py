"""Layer-wise learning-rate decay: lower layers, which hold general features, move more slowly.

A parameter at depth d trains at ``learning_rate * decay**d``: the head (everything above the layer
stack) at depth 0, layer i of L at depth ``L - i`` (the top layer at 1), the embeddings at ``L + 1``.
Biases and norms keep their no-weight-decay group at every depth. The schedule scales every group's
rate by the same factor, so the ratios hold for the whole run.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from tunelab.config.train import LayerwiseLRSpec, TrainConfig
from tunelab.models.freeze import layer_groups
from tunelab.train.callbacks import Plan
from tunelab.train.optim import no_decay
from tunelab.train.strategies.base import STRATEGIES, StrategySetup


def depth_groups(model: nn.Module) -> list[tuple[str, int, list[tuple[str, nn.Parameter]]]]:
    """(group name, depth, named parameters) from the head down to the embeddings."""
    g = layer_groups(model)
    n = len(g.layers)
    layers = [(f"layer.{i}", n - i, g.layers[i]) for i in reversed(range(n))]
    return [("head", 0, g.top), *layers, ("embeddings", n + 1, g.embeddings)]


def layerwise_param_groups(decay: float):
    """A ``ParamGroups`` function for ``fit``."""

    def build(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
        groups = []
        for name, depth, params in depth_groups(model):
            lr = cfg.learning_rate * decay**depth
            trainable = [(n, p) for n, p in params if p.requires_grad]
            for suffix, wd, keep in (("", cfg.weight_decay, False), (".no_decay", 0.0, True)):
                chosen = [p for n, p in trainable if no_decay(n, p) == keep]
                if chosen:
                    groups.append({"params": chosen, "lr": lr, "weight_decay": wd, "name": name + suffix})
        return groups

    return build


@STRATEGIES.register("layerwise_lr")
def layerwise_lr(spec: LayerwiseLRSpec, setup: StrategySetup) -> Plan:
    return Plan(param_groups=layerwise_param_groups(spec.decay))
