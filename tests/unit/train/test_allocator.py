"""train.keep_freed_memory: freed blocks are reused instead of faulted in again, and fit undoes it."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
import torch
from tests.unit.train.speed_helpers import cls_fit

from tunelab.config.train import TrainConfig
from tunelab.tasks import get_task
from tunelab.train import allocator, speed
from tunelab.train.allocator import glibc_available, keep_freed_memory
from tunelab.train.speed import Speed

glibc = pytest.mark.skipif(not glibc_available(), reason="tunes glibc's malloc")
THREADS = {"intra_op_threads": 1, "inter_op_threads": 1}
BLOCK = 48 << 20  # above the 32 MiB that glibc maps on its own after the undo


def _faults_of_allocating(times: int = 6) -> int:
    """Minor page faults of allocating, touching and freeing a 48 MiB tensor ``times`` times."""
    torch.empty(BLOCK, dtype=torch.uint8).fill_(1)  # the first one may fault either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.empty(BLOCK, dtype=torch.uint8).fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


MEASURE = f"""
import resource, sys, torch
from tunelab.train.allocator import keep_freed_memory

def faults(times=6):
    # glibc settles on reusing two slots only after a few aligned blocks (posix_memalign asks a
    # little more than a freed block holds); the steady state is what a training step sees.
    for _ in range(8):
        torch.empty({BLOCK}, dtype=torch.uint8).fill_(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.empty({BLOCK}, dtype=torch.uint8).fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

undo = keep_freed_memory()
kept = faults()
undo()
print(kept, faults())
"""


@glibc
def test_freed_blocks_are_reused_until_the_undo():
    # A fresh interpreter: the heap and thresholds that earlier tests leave behind do not count.
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    kept, mapped = map(int, out.stdout.split()[-2:])
    pages = 6 * BLOCK // resource.getpagesize()
    assert mapped > pages // 2, "after the undo each block is mapped and faulted in again"
    assert kept < mapped / 3, f"kept: {kept} faults against {mapped}"  # measured: 0 of 6


def test_auto_is_on_for_cpu_with_glibc_and_true_without_glibc_is_refused(monkeypatch):
    task, model = get_task("classification"), torch.nn.Linear(2, 2)

    def resolve(cfg: TrainConfig, device: str) -> Speed:
        return Speed.resolve(cfg, task, model, torch.device(device), "fp32", [4], THREADS)

    assert resolve(TrainConfig(), "cpu").keep_freed_memory is glibc_available()
    assert resolve(TrainConfig(), "meta").keep_freed_memory is False, "auto: CPU only"
    assert resolve(TrainConfig(keep_freed_memory=False), "cpu").keep_freed_memory is False
    monkeypatch.setattr(speed, "glibc_available", lambda: False)
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert resolve(TrainConfig(), "cpu").keep_freed_memory is False
    with pytest.raises(ValueError, match="keep_freed_memory: true, but this process does not allocate"):
        resolve(TrainConfig(keep_freed_memory=True), "cpu")
    assert keep_freed_memory() is None


@glibc
def test_fit_records_the_switch_and_undoes_it(tiny_bert, tmp_path, fresh_accelerator_state):
    result, _ = cls_fit(tiny_bert, tmp_path, max_steps=2)
    assert result.speed["keep_freed_memory"] is True
    pages = 6 * BLOCK // resource.getpagesize()
    assert _faults_of_allocating() > pages // 2, "the thresholds are back after fit"
