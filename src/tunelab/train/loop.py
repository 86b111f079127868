"""The training loop: accelerate for devices/precision/DDP, our own batch order for exact resume."""

from __future__ import annotations

import contextlib
import json
import math
import resource
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from tqdm.auto import tqdm

from tunelab.config.train import TrainConfig
from tunelab.runs import atomic_write_jsonl
from tunelab.batching import epoch_batches, eval_batches, shard
from tunelab.train.callbacks import FitContext, Plan
from tunelab.train.checkpoint import (
    WEIGHTS,
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    load_trainable,
    save_best,
    save_checkpoint,
)
from tunelab.train.optim import build_optimizer, build_scheduler
from tunelab.train.precision import choose_precision


@dataclass
class FitResult:
    state: TrainerState
    metric: str
    final_validation: dict[str, float]
    seconds: float
    train_tokens_per_s: float
    peak_memory_mb: float
    precision: str
    resumed_from: int | None


def fit(
    model: torch.nn.Module,
    tokenizer,
    task,
    train_features: list[dict[str, Any]],
    val_features: list[dict[str, Any]],
    cfg: TrainConfig,
    seed: int,
    checkpoints: Path,
    log_path: Path,
    resume: bool = False,
    plan: Plan | None = None,
) -> FitResult:
    """Train ``model`` in place; on return it holds the best validation weights.

    ``plan`` carries what strategies add: callbacks, a batch order, optimiser parameter groups.
    """
    plan = plan or Plan()
    order = plan.batch_order or epoch_batches
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    # Ask the process state (not a throwaway Accelerator: accelerate keeps one shared state, and a
    # second Accelerator with another mixed_precision would be refused) which device we are on.
    device = PartialState(cpu=not torch.cuda.is_available()).device
    precision = choose_precision(cfg.precision, device)
    acc = Accelerator(
        cpu=not torch.cuda.is_available(), mixed_precision="bf16" if precision == "bf16" else "no"
    )
    lengths = [len(f["input_ids"]) for f in train_features]
    global_batch = cfg.batch_size * acc.num_processes
    per_epoch = len(
        shard(epoch_batches(lengths, global_batch, seed, 0, False), acc.process_index, acc.num_processes)
    )
    if per_epoch == 0:
        raise ValueError(f"no training batches: {len(train_features)} rows, batch_size {cfg.batch_size}")
    steps_per_epoch = math.ceil(per_epoch / cfg.grad_accum)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    eval_every = cfg.eval_every or steps_per_epoch
    save_every = cfg.save_every or eval_every
    metric = cfg.metric_for_best or task.default_metric
    higher = task.greater_is_better(metric)

    optimizer = build_optimizer(model, cfg, plan.param_groups)
    scheduler = build_scheduler(optimizer, cfg, total)
    model, optimizer = acc.prepare(model, optimizer)
    raw = acc.unwrap_model(model)

    state, resumed_from = TrainerState(), None
    if resume and (ckpt := latest_checkpoint(checkpoints)) is not None:
        state = load_checkpoint(ckpt, raw, optimizer, scheduler)
        resumed_from = state.global_step
    elif acc.is_main_process:  # a fresh start: stale checkpoints must not leak into this run
        shutil.rmtree(checkpoints, ignore_errors=True)
    if acc.is_main_process:
        atomic_write_jsonl(log_path, state.history)
    ctx = FitContext(raw, optimizer, scheduler, state, cfg, total, steps_per_epoch, train_features)
    ctx.stop, ctx.stop_reason = bool(state.stopped), state.stopped
    for cb in plan.callbacks:
        cb.on_fit_start(ctx)

    def validate() -> dict[str, float]:
        with acc.autocast():
            return task.validate(model, eval_batches(val_features, task, tokenizer, cfg.eval_batch_size))

    def log(entry: dict[str, Any]) -> None:
        state.history.append(entry)
        if acc.is_main_process:
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")

    bar = tqdm(
        total=total,
        initial=state.global_step,
        desc="train",
        unit="step",
        disable=not acc.is_main_process,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    start, run_tokens, window_loss, window_n = time.perf_counter(), 0, 0.0, 0
    train_seconds = 0.0  # time in training steps only, for an honest tokens/s
    last_val: dict[str, float] = {}
    while state.global_step < total and not ctx.stop:
        batches = shard(
            order(lengths, global_batch, seed, state.epoch, cfg.group_by_length),
            acc.process_index,
            acc.num_processes,
        )
        i = state.batch_in_epoch
        while i < len(batches) and state.global_step < total and not ctx.stop:
            for cb in plan.callbacks:
                cb.on_step_start(ctx)
            model.train()
            step_start = time.perf_counter()
            group = batches[i : i + cfg.grad_accum]
            step_loss = 0.0
            for j, idx in enumerate(group):
                batch = {
                    k: v.to(acc.device)
                    for k, v in task.collate([train_features[k] for k in idx], tokenizer).items()
                }
                sync = contextlib.nullcontext() if j == len(group) - 1 else acc.no_sync(model)
                with sync, acc.autocast():
                    loss = task.loss(model, batch) / len(group)
                    acc.backward(loss)
                step_loss += loss.item()
                run_tokens += (
                    int(batch["attention_mask"].sum())
                    if "attention_mask" in batch
                    else batch["input_ids"].numel()
                )
            if cfg.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            i += len(group)
            state.global_step += 1
            state.batch_in_epoch = i
            if acc.num_processes > 1:  # log the global batch's loss, not this process's slice
                step_loss = acc.reduce(torch.tensor(step_loss, device=acc.device), "mean").item()
            window_loss, window_n = window_loss + step_loss, window_n + 1
            train_seconds += time.perf_counter() - step_start
            tps = run_tokens * acc.num_processes / max(train_seconds, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{tps:,.0f}")
            for cb in plan.callbacks:
                cb.on_step_end(ctx, step_loss)
            if state.global_step % cfg.log_every == 0 or state.global_step == total:
                log(
                    {
                        "step": state.global_step,
                        "epoch": round(state.epoch + i / len(batches), 4),
                        "loss": window_loss / window_n,
                        "lr": scheduler.get_last_lr()[0],
                        "tokens_per_s": tps,
                    }
                )
                window_loss, window_n = 0.0, 0
            if state.global_step % eval_every == 0 or state.global_step == total:
                last_val = validate()
                log({"step": state.global_step, "validation": last_val})
                for cb in plan.callbacks:
                    cb.on_evaluate(ctx, last_val)
                value = last_val[metric]
                if state.best_metric is None or (
                    value > state.best_metric if higher else value < state.best_metric
                ):
                    state.best_metric, state.best_step = value, state.global_step
                    if acc.is_main_process:
                        save_best(checkpoints, raw)
            if ctx.stop and not state.stopped:
                state.stopped = ctx.stop_reason or "stopped by a strategy"
                log({"step": state.global_step, "stopped": state.stopped})
            final = state.global_step == total or ctx.stop
            if acc.is_main_process and (state.global_step % save_every == 0 or final):
                # a checkpoint at the end of an epoch resumes at the start of the next one
                at = replace(state, epoch=state.epoch + 1, batch_in_epoch=0) if i >= len(batches) else state
                save_checkpoint(checkpoints, raw, optimizer, scheduler, at, cfg.keep_checkpoints)
        if i >= len(batches):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    bar.close()
    acc.wait_for_everyone()
    if (checkpoints / "best" / WEIGHTS).is_file():
        load_trainable(raw, checkpoints / "best" / WEIGHTS)
    if not last_val:  # resumed after the last evaluation: the figures are in the history
        last_val = next((h["validation"] for h in reversed(state.history) if "validation" in h), {})
    elapsed = time.perf_counter() - start
    return FitResult(
        state=state,
        metric=metric,
        final_validation=last_val,
        seconds=elapsed,
        train_tokens_per_s=run_tokens * acc.num_processes / max(train_seconds, 1e-9),
        peak_memory_mb=_peak_memory_mb(),
        precision=precision,
        resumed_from=resumed_from,
    )


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
