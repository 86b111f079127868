"""Optimiser and learning-rate schedule."""

from __future__ import annotations

import torch
from transformers import get_scheduler

from tunelab.config.train import TrainConfig


def no_decay(name: str, param: torch.nn.Parameter) -> bool:
    """Biases and norm weights are not decayed (decaying them only hurts)."""
    lowered = name.lower()
    return param.ndim < 2 or "norm" in lowered or lowered.endswith(".bias")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if no_decay(name, p) else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    name = "constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler
    return get_scheduler(
        name,
        optimizer=optimizer,
        num_warmup_steps=int(cfg.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
