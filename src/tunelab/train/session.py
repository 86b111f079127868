"""What one ``fit`` call sets up before its first step, and the small decisions its loop asks of it.

A :class:`Session` holds the accelerator, the schedule, the optimiser, the (possibly resumed) trainer
state and the strategies' hooks, so that the helpers of the loop take one argument.
"""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from tqdm.auto import tqdm

from tunelab.batching import deal, epoch_batches, shard, token_batches
from tunelab.config.train import TrainConfig
from tunelab.train.callbacks import FitContext, Plan
from tunelab.train.checkpoint import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint
from tunelab.train.compile import batch_shapes, compile_for_training
from tunelab.train.history import TrainLog
from tunelab.train.optim import build_optimizer, build_scheduler
from tunelab.train.precision import choose_precision
from tunelab.train.speed import Speed
from tunelab.train.threads import apply_threads


@dataclass
class FitInputs:
    """What is trained, on what: the model (trained in place), its tokenizer, the task, the splits."""

    model: torch.nn.Module
    tokenizer: Any
    task: Any  # tunelab.tasks.Task
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]


@dataclass
class FitPaths:
    """Where ``fit`` writes: checkpoint folders (``step-N``, ``best``) and the JSON-lines log."""

    checkpoints: Path
    log: Path


def plain_batches(
    lengths: list[int], cfg: TrainConfig, seed: int, epoch: int, acc: Accelerator, multiple: int = 1,
    order: Any = None,
) -> list[list[int]]:
    """This process's batches of ``epoch``: by token budget (``train.batch_tokens``) or of
    ``batch_size`` rows in ``order`` (a strategy's batch order; default :func:`epoch_batches`)."""
    rank, world = acc.process_index, acc.num_processes
    if cfg.batch_tokens:
        batches = token_batches(lengths, cfg.batch_tokens, seed, epoch, cfg.group_by_length, multiple)
        return deal(batches, rank, world)
    batches = (order or epoch_batches)(lengths, cfg.batch_size * world, seed, epoch, cfg.group_by_length)
    return shard(batches, rank, world)


@dataclass
class Schedule:
    """Step counts, per process: optimiser steps per epoch, in all, between evaluations and saves."""

    steps_per_epoch: int
    total: int
    eval_every: int
    save_every: int

    @classmethod
    def build(
        cls, lengths: list[int], cfg: TrainConfig, seed: int, acc: Accelerator, multiple: int = 1
    ) -> Schedule:
        """Fixed before training from the plain order (a strategy's order may vary by epoch).

        With fixed-size batches every epoch has the same count. Token budgets cut a different number
        of batches each epoch (the shuffle decides which lengths share a window), so the total sums
        the epochs the run covers: a run of ``epochs`` ends exactly at the end of its last epoch
        (or at its fraction), and the warm-up is a share of that total. ``steps_per_epoch`` (the
        default evaluation interval) is then the first epoch's.
        """
        def steps(epoch: int) -> int:
            size = len(plain_batches(lengths, cfg, seed, epoch, acc, multiple))
            if size == 0:
                raise ValueError(f"no training batches: {len(lengths)} rows, batch_size {cfg.batch_size}")
            return math.ceil(size / cfg.grad_accum)

        steps_per_epoch = steps(0)
        if cfg.max_steps:
            total = cfg.max_steps
        elif not cfg.batch_tokens:
            total = max(1, math.ceil(cfg.epochs * steps_per_epoch))
        else:
            whole, part = int(cfg.epochs), cfg.epochs - int(cfg.epochs)
            total = sum(steps_per_epoch if e == 0 else steps(e) for e in range(whole))
            total = max(1, total + (math.ceil(part * steps(whole)) if part else 0))
        eval_every = cfg.eval_every or steps_per_epoch
        return cls(steps_per_epoch, total, eval_every, cfg.save_every or eval_every)


def make_accelerator(cfg: TrainConfig) -> tuple[Accelerator, str]:
    """The accelerator for ``cfg.precision`` and the precision chosen ("bf16" or "fp32")."""
    cpu = not torch.cuda.is_available()
    # Ask the process state (not a throwaway Accelerator: accelerate keeps one shared state, and a
    # second Accelerator with another mixed_precision would be refused) which device we are on.
    precision = choose_precision(cfg.precision, PartialState(cpu=cpu).device)
    return Accelerator(cpu=cpu, mixed_precision="bf16" if precision == "bf16" else "no"), precision


@dataclass
class Session:
    """The state of one ``fit`` call; built by :meth:`start`."""

    inputs: FitInputs
    paths: FitPaths
    cfg: TrainConfig
    seed: int
    plan: Plan
    acc: Accelerator
    precision: str
    schedule: Schedule
    model: torch.nn.Module  # as prepared by accelerate (DDP-wrapped under a launcher)
    raw: torch.nn.Module  # unwrapped: what checkpoints and callbacks see
    optimizer: Any
    scheduler: Any
    state: TrainerState
    resumed_from: int | None
    ctx: FitContext
    log: TrainLog
    metric: str
    higher_is_better: bool
    lengths: list[int]
    speed: Speed
    train_model: torch.nn.Module  # what the training steps call: ``model``, or it compiled
    bar: Any = None

    @classmethod
    def start(
        cls, inputs: FitInputs, cfg: TrainConfig, seed: int, paths: FitPaths, resume: bool, plan: Plan
    ) -> Session:
        """Build the optimiser, restore the latest checkpoint (``resume``) or clear stale ones, and
        run the strategies' ``on_fit_start`` hooks."""
        threads = apply_threads(cfg.num_threads, cfg.num_interop_threads)
        acc, precision = make_accelerator(cfg)
        if cfg.batch_tokens and plan.batch_order is not None:
            raise ValueError(
                "train.batch_tokens: a strategy sets the batch order, and token budgets build their own; "
                "keep one"
            )
        lengths = [len(f["input_ids"]) for f in inputs.train]
        speed = Speed.resolve(
            cfg, inputs.task, inputs.model, acc.device, precision, lengths, threads, inputs.train,
            getattr(inputs.tokenizer, "pad_token_id", None),
        )
        schedule = Schedule.build(lengths, cfg, seed, acc, speed.pad_to_multiple_of)
        try:
            speed.apply(inputs.task, inputs.model)
            optimizer = build_optimizer(inputs.model, cfg, plan.param_groups)
            scheduler = build_scheduler(optimizer, cfg, schedule.total)
            model, optimizer = acc.prepare(inputs.model, optimizer)
            raw = acc.unwrap_model(model)
            train_model = model
            if speed.compile:
                first = plain_batches(lengths, cfg, seed, 0, acc, speed.pad_to_multiple_of, plan.batch_order)
                shapes = batch_shapes(first, lengths, speed.pad_to_multiple_of)
                train_model = compile_for_training(model, shapes)
            state, resumed_from = TrainerState(), None
            if resume and (ckpt := latest_checkpoint(paths.checkpoints)) is not None:
                state = load_checkpoint(ckpt, raw, optimizer, scheduler)
                resumed_from = state.global_step
            elif acc.is_main_process:  # a fresh start: stale checkpoints must not leak into this run
                shutil.rmtree(paths.checkpoints, ignore_errors=True)
            log = TrainLog(paths.log, state.history, acc.is_main_process, plan.on_log)
            log.restart()
            ctx = FitContext(
                raw, optimizer, scheduler, state, cfg, schedule.total, schedule.steps_per_epoch, inputs.train
            )
            ctx.stop, ctx.stop_reason = bool(state.stopped), state.stopped
            metric = cfg.metric_for_best or inputs.task.default_metric
            run = cls(
                inputs=inputs, paths=paths, cfg=cfg, seed=seed, plan=plan, acc=acc, precision=precision,
                schedule=schedule, model=model, raw=raw, optimizer=optimizer, scheduler=scheduler,
                state=state, resumed_from=resumed_from, ctx=ctx, log=log, metric=metric,
                higher_is_better=inputs.task.greater_is_better(metric), lengths=lengths, speed=speed,
                train_model=train_model,
            )
            run.hooks("on_fit_start")
            run.bar = tqdm(
                total=schedule.total,
                initial=state.global_step,
                desc="train",
                unit="step",
                disable=not acc.is_main_process,
                file=sys.stderr,
                dynamic_ncols=True,
            )
            return run
        except BaseException:  # a failed start gives the model and task back as they came
            speed.restore()
            raise

    def hooks(self, name: str, *args: Any) -> None:
        """Call hook ``name`` of every strategy callback, in plan order."""
        for cb in self.plan.callbacks:
            getattr(cb, name)(self.ctx, *args)

    def show_progress(self, loss: float, tokens_per_s: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}")

    def running(self) -> bool:
        """Steps are left and no strategy has stopped the run."""
        return self.state.global_step < self.schedule.total and not self.ctx.stop

    def epoch_batches(self) -> list[list[int]]:
        """This process's share of the current epoch's batches (index lists into the train split)."""
        return plain_batches(
            self.lengths, self.cfg, self.seed, self.state.epoch, self.acc, self.speed.pad_to_multiple_of,
            self.plan.batch_order,
        )

    def due(self, every: int) -> bool:
        """Whether the step just done is a multiple of ``every`` or the last one."""
        return self.state.global_step % every == 0 or self.state.global_step == self.schedule.total

    def note_stop(self) -> None:
        """Record (once) that a strategy asked to stop, so a resumed run stays stopped."""
        if self.ctx.stop and not self.state.stopped:
            self.state.stopped = self.ctx.stop_reason or "stopped by a strategy"
            self.log.append({"step": self.state.global_step, "stopped": self.state.stopped})

    def checkpoint(self, epoch_done: bool) -> None:
        """Save ``step-N`` every ``save_every`` steps and at the end (the main process only)."""
        state = self.state
        final = state.global_step == self.schedule.total or self.ctx.stop
        if not self.acc.is_main_process or not (state.global_step % self.schedule.save_every == 0 or final):
            return
        # a checkpoint at the end of an epoch resumes at the start of the next one
        at = replace(state, epoch=state.epoch + 1, batch_in_epoch=0) if epoch_done else state
        save_checkpoint(
            self.paths.checkpoints, self.raw, self.optimizer, self.scheduler, at, self.cfg.keep_checkpoints
        )
