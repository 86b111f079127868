"""README "Training": ``--resume`` after a crash or kill continues bit for bit.

A training process (curriculum + layer-wise learning rates, focal loss) SIGKILLs itself at a chosen
point: mid-epoch, right after the checkpoint at an epoch boundary, or after the last evaluation (before
its final checkpoint). ``run_stage("train", recipe, resume=True)`` then finishes the run, and every log
line, every checkpoint (weights, optimiser, RNG streams), ``best/`` and the saved model equal, exactly,
those of the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from tests.guarantees.runs_helpers import (
    assert_same_log,
    assert_same_weights,
    checkpoint_steps,
    prepared_run,
)

from tunelab.pipeline import run_stage

KILLER = r'''
import os, signal, sys

import tunelab.train.loop as loop
from tunelab.config import load_recipe
from tunelab.pipeline import run_stage
from tunelab.train.session import Session

mode, recipe_path, at = sys.argv[1], sys.argv[2], int(sys.argv[3])


def die():
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: as a kill from outside


if mode == "mid_epoch":  # during step `at`, before its optimiser update
    real_step = loop.optimizer_step

    def optimizer_step(run, group, speed):
        if run.state.global_step + 1 == at:
            die()
        return real_step(run, group, speed)

    loop.optimizer_step = optimizer_step
elif mode == "epoch_boundary":  # right after the checkpoint that ends an epoch
    real_checkpoint = Session.checkpoint

    def checkpoint(self, epoch_done):
        real_checkpoint(self, epoch_done)
        if epoch_done and self.state.global_step == at:
            die()

    Session.checkpoint = checkpoint
elif mode == "after_last_eval":  # the last evaluation (and its best/ save) done, no final checkpoint yet
    real_evaluate = loop.evaluate

    def evaluate(run):
        out = real_evaluate(run)
        if run.state.global_step == at:
            die()
        return out

    loop.evaluate = evaluate
run_stage("train", load_recipe(recipe_path))
sys.exit(3)  # not killed
'''


def _kill_point(mode: str, sched: dict[str, int]) -> tuple[int, int]:
    """(step the process dies at, step of the last checkpoint it leaves)."""
    spe, every, total = sched["steps_per_epoch"], sched["save_every"], sched["total"]
    if mode == "mid_epoch":
        at = spe + every + 1  # epoch 2, after its first mid-epoch checkpoint
        assert at % every and at < 2 * spe
        return at, at - 1 - (at - 1) % every
    if mode == "epoch_boundary":
        return spe, spe
    assert total % every == 0
    return total, total - every


@pytest.fixture(scope="module", params=["mid_epoch", "epoch_boundary", "after_last_eval"])
def resumed(request, straight_run, tiny_bert, tmp_path_factory):
    """(mode, straight run, killed-and-resumed run, step resumed from) for each kill point."""
    mode = request.param
    straight, sched = straight_run
    out = tmp_path_factory.mktemp(mode)
    recipe, run, _ = prepared_run(tiny_bert, out)
    at, last_ckpt = _kill_point(mode, sched)
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, mode, str(out / "recipe.yaml"), str(at)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not (run / "model").exists(), "a killed run leaves no final model"
    assert checkpoint_steps(run)[-1] == f"step-{last_ckpt:08d}"
    assert json.loads((run / "manifest.json").read_text())["stages"]["train"]["status"] == "running"

    result = run_stage("train", recipe, resume=True)
    assert result.metrics["resumed_from_step"] == last_ckpt
    assert result.metrics["steps"] == sched["total"]
    return mode, straight, run, last_ckpt


def test_killed_then_resumed_trains_exactly_as_the_uninterrupted_run(resumed):
    _, straight, run, _ = resumed
    assert_same_weights(straight, run)


def test_killed_then_resumed_logs_exactly_as_the_uninterrupted_run(resumed):
    # a checkpoint between two log lines carries the loss window, so every logged line matches
    _, straight, run, _ = resumed
    assert_same_log(straight, run)


def test_a_checkpoint_restores_every_rng(tmp_path):
    """python, numpy, torch CPU (and CUDA, where there is one) continue from the saved states."""
    import random

    import numpy as np
    import torch

    from tunelab.train.checkpoint import TrainerState, load_checkpoint, save_checkpoint

    torch.manual_seed(3)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    random.seed(1), np.random.seed(2)

    def draws():
        out = [random.random(), float(np.random.rand()), float(torch.rand(1))]
        if torch.cuda.is_available():
            out.append(float(torch.rand(1, device="cuda")))
        return out

    draws()
    path = save_checkpoint(tmp_path, model, optimizer, scheduler, TrainerState(global_step=1), keep=2)
    expected = draws()
    draws()  # the generators move on (the process would die here)
    load_checkpoint(path, model, optimizer, scheduler)
    assert draws() == expected
