"""tunelab turns on torch's huge pages as it loads (before torch), a user's own setting wins, and the
run reports what holds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import tunelab
from tunelab.train.threads import huge_pages

PROBE = "import os; {first}from tunelab.train.threads import huge_pages; " \
        "print(os.environ.get('THP_MEM_ALLOC_ENABLE')); print(huge_pages())"


def _probe(env_value: str | None, torch_first: bool = False) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    code = PROBE.format(first="import torch; " if torch_first else "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-2:]


def test_set_before_torch_loads():
    value, status = _probe(None)
    assert value == "1"
    assert status.startswith("on (kernel: ") or status.startswith("off (kernel: "), status


def test_a_users_opt_out_wins():
    assert _probe("0") == ["0", "off (THP_MEM_ALLOC_ENABLE is not 1)"]


def test_too_late_when_torch_loaded_first():
    value, status = _probe(None, torch_first=True)
    assert value == "1" and status == "off (torch loaded before tunelab could set THP_MEM_ALLOC_ENABLE)"


@pytest.mark.parametrize(("mode", "expected"), [
    ("always [madvise] never\n", "on (kernel: madvise)"),
    ("[always] madvise never\n", "on (kernel: always)"),
    ("always madvise [never]\n", "off (kernel: never)"),
])
def test_the_kernels_mode_is_read(tmp_path, monkeypatch, mode, expected):
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "1")
    monkeypatch.setattr(tunelab, "HUGE_PAGES_BEFORE_TORCH", True)
    sysfs = tmp_path / "enabled"
    sysfs.write_text(mode)
    assert huge_pages(sysfs) == expected
    assert huge_pages(tmp_path / "missing") == "off (kernel: unavailable)"
