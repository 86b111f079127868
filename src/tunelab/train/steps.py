"""One optimiser step over a gradient-accumulation group, and the throughput figure of the steps."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from tunelab.train.padding import pad_batch

if TYPE_CHECKING:
    from tunelab.train.session import Session


def count_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Real tokens of a batch: padding is not counted where there is an attention mask."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return batch["input_ids"].numel()


@dataclass
class Throughput:
    """Tokens and seconds of the training steps alone (not evaluation or saving): an honest tokens/s."""

    processes: int = 1
    tokens: int = 0  # this process's
    seconds: float = 0.0

    def add(self, tokens: int, seconds: float) -> None:
        self.tokens, self.seconds = self.tokens + tokens, self.seconds + seconds

    @property
    def per_s(self) -> float:
        return self.tokens * self.processes / max(self.seconds, 1e-9)


def clip_gradients(acc: Accelerator, model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """accelerate's ``clip_grad_norm_``; on CPU without sharding the same arithmetic as torch's, but
    the gradients are not multiplied when the clip coefficient is clamped to 1 (torch multiplies
    anyway, to spare CUDA a sync): the same gradients, and one pass over them less in about half of a
    MiniLM fine-tune's steps."""
    plain = acc.distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU)
    if acc.device.type != "cpu" or not plain:
        return acc.clip_grad_norm_(model.parameters(), max_norm)
    params = [p for p in model.parameters() if p.grad is not None]
    total = torch.nn.utils.get_total_norm([p.grad for p in params], 2.0)
    if bool(max_norm / (total + 1e-6) < 1.0):  # torch's coefficient, in torch's arithmetic
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return total


def optimizer_step(run: Session, group: list[list[int]], speed: Throughput) -> float:
    """Forward and backward each batch of ``group``, clip, step optimiser and schedule; return the
    group's loss (under DDP the mean over processes, so the log shows the global batch's loss)."""
    acc, task, inputs, model = run.acc, run.inputs.task, run.inputs, run.model
    start = time.perf_counter()
    model.train()
    loss_sum, tokens = 0.0, 0
    multiple, pad_id = run.speed.pad_to_multiple_of, getattr(inputs.tokenizer, "pad_token_id", None)
    for j, idx in enumerate(group):
        batch = task.collate([inputs.train[k] for k in idx], inputs.tokenizer)
        batch = {k: v.to(acc.device) for k, v in pad_batch(batch, multiple, pad_id).items()}
        # under DDP only the group's last backward all-reduces; the others accumulate locally
        sync = contextlib.nullcontext() if j == len(group) - 1 else acc.no_sync(model)
        with sync, acc.autocast():
            loss = task.loss(run.train_model, batch) / len(group)
            acc.backward(loss)
        loss_sum += loss.item()
        tokens += count_tokens(batch)
    if run.cfg.max_grad_norm:
        clip_gradients(acc, model, run.cfg.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if acc.num_processes > 1:
        loss_sum = acc.reduce(torch.tensor(loss_sum, device=acc.device), "mean").item()
    speed.add(tokens, time.perf_counter() - start)
    return loss_sum
