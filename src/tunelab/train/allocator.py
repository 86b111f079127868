"""Freed memory kept in the process while training runs on CPU (``train.keep_freed_memory``).

glibc's malloc gives blocks above its mmap threshold (128 KiB, growing with use to at most 32 MiB)
their own mapping, unmapped again on free, and hands the top of its heap back to the kernel whenever
more than twice that threshold lies free there. A training step frees and allocates the same
activations and gradients every step, so the kernel maps and zeroes those pages again and again:
8,000 to 15,000 page faults and 16 to 25 ms of system time per MiniLM step (batch 32, bf16, 2-core
EPYC; ``resource.getrusage``). With both thresholds raised (``mallopt``), freed blocks stay in the
heap and are reused: about 100 faults a step. PyTorch's CPU performance guide gets the same by
preloading jemalloc or tcmalloc; this needs no preload and no restart.

It is the process's allocator, not the model's: the undo sets the thresholds to where glibc's own
adjustment takes them in a process that frees big tensors (mmap above 32 MiB, trim above 64 MiB;
once set, glibc adjusts them no more) and returns the free heap top to the kernel
(``malloc_trim``). Elsewhere than glibc (musl, macOS, Windows) it does nothing.
Written here because no kept library tunes glibc's malloc for a running process.
"""

from __future__ import annotations

import ctypes
import logging
import platform
from collections.abc import Callable

log = logging.getLogger("tunelab")

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
KEEP = 1 << 30  # blocks up to 1 GiB come from the heap, and up to 1 GiB of free heap top is kept
MMAP_AFTER, TRIM_AFTER = 32 << 20, 64 << 20  # the most glibc's dynamic thresholds grow to (64-bit)


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def glibc_available() -> bool:
    """Whether this process allocates with glibc's malloc (what the switch tunes)."""
    return _glibc() is not None


def keep_freed_memory() -> Callable[[], None] | None:
    """Raise glibc's mmap and trim thresholds; returns the undo, or None where there is no glibc or
    it refused the setting."""
    libc = _glibc()
    if libc is None:
        return None
    if not (libc.mallopt(M_MMAP_THRESHOLD, KEEP) and libc.mallopt(M_TRIM_THRESHOLD, KEEP)):
        log.warning("train.keep_freed_memory: glibc refused the thresholds; left as they were")
        _defaults(libc)
        return None

    def undo() -> None:
        _defaults(libc)

    return undo


def _defaults(libc: ctypes.CDLL) -> None:
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_AFTER)
    libc.mallopt(M_TRIM_THRESHOLD, TRIM_AFTER)
    libc.malloc_trim(0)
