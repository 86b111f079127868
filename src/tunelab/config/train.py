"""The ``train`` section: optimisation, schedule, precision, evaluation and checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunelab.config.base import Section


class TrainConfig(Section):
    epochs: float = Field(1.0, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps")
    batch_size: int = Field(16, ge=1, le=4096)
    eval_batch_size: int = Field(64, ge=1, le=4096)
    grad_accum: int = Field(1, ge=1, le=1024)
    learning_rate: float = Field(5e-5, gt=0, le=1.0)
    weight_decay: float = Field(0.01, ge=0, le=1.0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1.0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast only where the CPU/GPU has fast bf16 matrix units"
    )
    group_by_length: bool = Field(True, description="batch texts of similar length to cut padding")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations; default once an epoch")
    save_every: int | None = Field(None, ge=1, description="steps between checkpoints; default at each eval")
    keep_checkpoints: int = Field(2, ge=1)
    metric_for_best: str | None = Field(None, description="validation metric that picks the best model")
    log_every: int = Field(10, ge=1)
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; default all cores")
