"""Pick the compute precision: bf16 autocast only where the hardware makes it fast and safe."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

FAST_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of ``/proc/cpuinfo`` text (x86 ``flags``, Arm ``Features`` lines), as words."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16 units.

    Without them PyTorch emulates bf16 matmuls, which is far slower than fp32 (measured 150x on
    an AVX2-only EPYC), so ``auto`` must not pick bf16 there.
    """
    cap = torch.backends.cpu.get_cpu_capability().upper()
    if "AMX" in cap:
        return True
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return bool(cpu_flags(text) & FAST_BF16_FLAGS)


def choose_precision(requested: str, device: torch.device) -> str:
    """Resolve ``auto`` into ``bf16`` or ``fp32`` for this device."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"
