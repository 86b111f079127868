"""train.keep_freed_memory: freed blocks are reused instead of faulted in again, and fit undoes it."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

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
# Larger than any free chunk the kept phase or a tiny fit leaves in the heap: glibc reuses a free heap
# chunk that fits before it considers mapping, whatever the thresholds.
BIG = 512 << 20


def _faults_of_allocating(size: int, warm: int, times: int) -> int:
    """Minor page faults of allocating, touching and freeing ``size`` bytes ``times`` times, after
    ``warm`` such allocations (glibc settles on reusing two slots for aligned blocks only after a few:
    posix_memalign asks a little more than a freed block holds)."""
    for _ in range(warm):
        torch.empty(size, dtype=torch.uint8).fill_(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        torch.empty(size, dtype=torch.uint8).fill_(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def _pages(size: int, times: int) -> int:
    return times * size // resource.getpagesize()


MEASURE = """
from tests.unit.train.test_allocator import BIG, BLOCK, _faults_of_allocating as faults
from tunelab.train.allocator import keep_freed_memory

plain = faults(BLOCK, 8, 6)
undo = keep_freed_memory()
kept = faults(BLOCK, 8, 6)
undo()
print(plain, kept, faults(BIG, 1, 1))
"""


@glibc
def test_freed_blocks_are_reused_until_the_undo():
    # A fresh interpreter: the heap that earlier tests leave behind does not count.
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert out.returncode == 0, out.stderr
    plain, kept, after = map(int, out.stdout.split()[-3:])
    assert plain > _pages(BLOCK, 6) // 2, "glibc maps 48 MiB blocks and faults them in every time"
    assert kept < plain / 3, f"kept: {kept} faults against {plain}"  # measured: 0 of 6 blocks
    assert after > _pages(BIG, 1) // 2, "after the undo big blocks are mapped again"


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
def test_fit_records_the_switch_and_undoes_it(tiny_bert, tmp_path, fresh_accelerator_state, monkeypatch):
    # Counted, not measured: in a process that has run other tests the heap may hold a free chunk
    # bigger than any probe, which glibc reuses whatever its thresholds (the fresh-interpreter test
    # above measures what the undo does).
    calls: list[str] = []

    def counted() -> object:
        undo = keep_freed_memory()
        calls.append("set")
        return lambda: (calls.append("undo"), undo())

    monkeypatch.setattr(speed, "keep_freed_memory", counted)
    result, _ = cls_fit(tiny_bert, tmp_path, max_steps=2)
    assert result.speed["keep_freed_memory"] is True
    assert calls == ["set", "undo"], "fit sets the thresholds once and undoes them when it ends"
