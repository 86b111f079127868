"""Token-budget batching in ``fit``: the schedule counts each epoch's batches, every step keeps the budget,
each epoch sees every example once, and a crashed run resumes to exactly the uninterrupted result."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch
from tests.unit.train.fit_helpers import Crash
from tests.unit.train.speed_helpers import sft_fit

from tunelab.batching import token_batches
from tunelab.config.train import TrainConfig
from tunelab.train.callbacks import Callback, Plan
from tunelab.train.session import Schedule

BUDGET, MULTIPLE = 160, 8
ONE_PROCESS = SimpleNamespace(process_index=0, num_processes=1)


def test_the_schedule_sums_the_batches_of_the_epochs_it_covers():
    rng = random.Random(0)
    lengths = [rng.randint(4, 200) for _ in range(500)]
    cfg = TrainConfig(batch_tokens=1024, epochs=2.5, grad_accum=2, warmup_ratio=0.1)
    per_epoch = [len(token_batches(lengths, 1024, 3, e, True, MULTIPLE)) for e in range(3)]
    assert len(set(per_epoch)) > 1, "the shuffle decides how many budgets an epoch fills"
    sched = Schedule.build(lengths, cfg, 3, ONE_PROCESS, MULTIPLE)
    steps = [math.ceil(n / 2) for n in per_epoch]
    assert sched.steps_per_epoch == steps[0]
    assert sched.total == steps[0] + steps[1] + math.ceil(0.5 * steps[2])
    assert sched.eval_every == sched.save_every == steps[0]
    fixed = Schedule.build(lengths, TrainConfig(batch_size=16, epochs=2.5), 3, ONE_PROCESS)
    assert fixed.total == math.ceil(2.5 * math.ceil(500 / 16)), "fixed-size batches: as before"


class _Shapes(Callback):
    """Records (rows, width) of every training forward."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_fit_start(self, ctx) -> None:
        def record(module, args, kwargs) -> None:
            if module.training:
                self.seen.append(tuple(kwargs["input_ids"].shape))

        ctx.model.register_forward_pre_hook(record, with_kwargs=True)


def _budget_fit(tiny_llama, tmp_path, plan: Plan | None = None, resume: bool = False):
    return sft_fit(
        tiny_llama, tmp_path, plan=plan, resume=resume, ragged=True, max_steps=None, epochs=2,
        batch_tokens=BUDGET, pad_to_multiple_of=MULTIPLE, eval_every=4, save_every=3, keep_checkpoints=10,
    )


def test_every_step_keeps_the_budget_and_each_epoch_sees_every_example_once(
    tiny_llama, tmp_path, fresh_accelerator_state
):
    shapes = _Shapes()
    result, _ = _budget_fit(tiny_llama, tmp_path, Plan(callbacks=[shapes]))
    assert result.speed["batch_tokens"] == BUDGET and result.speed["over_budget_examples"] == 0
    assert all(rows * width <= BUDGET and width % MULTIPLE == 0 for rows, width in shapes.seen)
    assert len({rows for rows, _ in shapes.seen}) > 1, "rows vary with the lengths: a token budget"
    state = result.state
    assert (state.epoch, state.batch_in_epoch) == (2, 0), "the run ends exactly at the end of epoch 2"
    assert state.global_step == len(shapes.seen)
    assert sum(rows for rows, _ in shapes.seen) == 2 * 40, "40 train examples, twice"


def _no_clock(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "tokens_per_s"} for h in history]


def test_a_crashed_token_budget_run_resumes_exactly(tiny_llama, tmp_path, fresh_accelerator_state):
    straight, weights = _budget_fit(tiny_llama, tmp_path / "a")
    steps = straight.state.global_step
    crash_at = steps // 2 + 1  # mid-run, past a checkpoint (every 3 steps), inside an epoch
    with pytest.raises(KeyboardInterrupt):
        _budget_fit(tiny_llama, tmp_path / "b", Plan(callbacks=[Crash(crash_at)]))
    resumed, weights_b = _budget_fit(tiny_llama, tmp_path / "b", resume=True)
    assert resumed.resumed_from == 3 * (crash_at // 3) > 0
    assert resumed.state.global_step == steps
    assert _no_clock(resumed.state.history) == _no_clock(straight.state.history)
    for (name, a), (_, b) in zip(weights.named_parameters(), weights_b.named_parameters(), strict=True):
        assert torch.equal(a, b), name
