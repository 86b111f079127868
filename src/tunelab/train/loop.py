"""The training loop: accelerate for devices/precision/DDP, our own batch order for exact resume.

``fit`` is the loop alone; its parts live next to it: the setup (``session``), one optimiser step
(``steps``), validation and the best weights (``best``), the log (``history``) and the checkpoint
format (``checkpoint``).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

import torch

from tunelab.config.train import TrainConfig
from tunelab.train.best import evaluate, last_validation
from tunelab.train.callbacks import Plan
from tunelab.train.checkpoint import TrainerState, load_best
from tunelab.train.history import LossWindow, log_progress
from tunelab.train.session import FitInputs, FitPaths, Session
from tunelab.train.steps import Throughput, optimizer_step

__all__ = ["FitInputs", "FitPaths", "FitResult", "fit"]


@dataclass
class FitResult:
    """How a ``fit`` ended; ``final_validation`` is the last evaluation's (a resumed run that evaluated
    no more takes it from the history), ``train_tokens_per_s`` counts training steps' time only."""

    state: TrainerState
    metric: str
    final_validation: dict[str, float]
    seconds: float
    train_tokens_per_s: float
    peak_memory_mb: float
    precision: str
    resumed_from: int | None
    speed: dict[str, Any]  # the resolved training-speed switches and thread counts (speed.Speed)


def fit(
    inputs: FitInputs, cfg: TrainConfig, seed: int, paths: FitPaths, *,
    resume: bool = False, plan: Plan | None = None,
) -> FitResult:
    """Train ``inputs.model`` in place; on return it holds the best validation weights.

    ``plan`` carries what strategies add: callbacks, a batch order, optimiser parameter groups.
    """
    run = Session.start(inputs, cfg, seed, paths, resume, plan or Plan())
    try:
        return _train(run, cfg, paths)
    finally:
        run.speed.restore()  # the task's plain loss, the model without checkpointing, even after a crash


def _train(run: Session, cfg: TrainConfig, paths: FitPaths) -> FitResult:
    state, start = run.state, time.perf_counter()
    speed, window, last_val = Throughput(run.acc.num_processes), LossWindow(state), {}
    while run.running():
        batches = run.epoch_batches()
        while state.batch_in_epoch < len(batches) and run.running():
            run.hooks("on_step_start")
            group = batches[state.batch_in_epoch : state.batch_in_epoch + cfg.grad_accum]
            loss = optimizer_step(run, group, speed)
            state.global_step, state.batch_in_epoch = state.global_step + 1, state.batch_in_epoch + len(group)
            window.add(loss)
            run.show_progress(loss, speed.per_s)
            run.hooks("on_step_end", loss)
            log_progress(run, window, speed.per_s, len(batches))
            if run.due(run.schedule.eval_every):
                last_val = evaluate(run)
            run.note_stop()
            run.checkpoint(epoch_done=state.batch_in_epoch >= len(batches))
        if state.batch_in_epoch >= len(batches):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    run.bar.close()
    run.acc.wait_for_everyone()
    load_best(paths.checkpoints, run.raw, run.optimizer)
    # accelerate wrapped the model's forward in autocast in place: the caller gets it back plain, so what
    # runs the model next (calibration, thresholds, evaluation) computes as a freshly loaded copy would
    run.acc.unwrap_model(run.model, keep_fp32_wrapper=False)
    return _result(run, last_val or last_validation(run), time.perf_counter() - start, speed)


def _result(run: Session, last_val: dict[str, float], seconds: float, speed: Throughput) -> FitResult:
    return FitResult(
        state=run.state,
        metric=run.metric,
        final_validation=last_val,
        seconds=seconds,
        train_tokens_per_s=speed.per_s,
        peak_memory_mb=_peak_memory_mb(),
        precision=run.precision,
        resumed_from=run.resumed_from,
        speed=run.speed.summary(),
    )


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
