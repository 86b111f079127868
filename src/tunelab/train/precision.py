"""Pick the compute precision: bf16 autocast only where the hardware makes it fast and safe."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


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
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return any(f in flags for f in ("amx_bf16", "avx512_bf16"))


def choose_precision(requested: str, device: torch.device) -> str:
    """Resolve ``auto`` into ``bf16`` or ``fp32`` for this device."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"
