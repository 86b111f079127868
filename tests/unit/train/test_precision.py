"""``precision: auto`` picks bf16 on a CPU exactly when it has fast bf16 units (AMX / AVX512-BF16).

Checked against this machine's real CPU flags, read here independently of ``tunelab.train.precision``,
not against a stub of the function under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunelab.train import precision

FAST = {"amx_bf16", "avx512_bf16"}


def _flags_of_this_cpu() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        pytest.skip("no /proc/cpuinfo on this machine")
    lines = [line for line in text.splitlines() if line.split(":")[0].strip() in ("flags", "Features")]
    if not lines:
        pytest.skip("/proc/cpuinfo lists no CPU flags")
    return {word for line in lines for word in line.split(":", 1)[1].split()}


def test_auto_follows_the_real_cpu_flags():
    flags = _flags_of_this_cpu()
    fast = bool(flags & FAST) or "AMX" in torch.backends.cpu.get_cpu_capability().upper()
    precision.cpu_has_fast_bf16.cache_clear()
    try:
        chosen = precision.choose_precision("auto", torch.device("cpu"))
    finally:
        precision.cpu_has_fast_bf16.cache_clear()
    assert chosen == ("bf16" if fast else "fp32"), f"bf16 units: {sorted(flags & FAST) or 'none'}"


AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n"


def test_flag_parsing_needs_the_whole_flag():
    assert not precision.cpu_flags(AVX2_ONLY) & precision.FAST_BF16_FLAGS
    assert precision.cpu_flags(SAPPHIRE) >= {"avx512_bf16", "amx_bf16"}
    # a flag that merely contains the name (or a model name line mentioning it) is not the flag
    assert not precision.cpu_flags("model name\t: avx512_bf16 lookalike\nflags\t: avx512_bf16x\n") & FAST


def test_explicit_choice_wins():
    assert precision.choose_precision("bf16", torch.device("cpu")) == "bf16"
    assert precision.choose_precision("fp32", torch.device("cpu")) == "fp32"
