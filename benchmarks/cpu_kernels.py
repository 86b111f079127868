"""The two CPU kernels behind ``train.fast_dropout`` and ``train.attention``, each against torch's own.

- Dropout, forward and backward, on activations of the shapes the training benchmarks see (MiniLM
  hidden states, SmolLM2 LoRA inputs): ``nn.functional.dropout`` (the baseline) against
  ``tunelab.train.fast_dropout.fast_dropout``.
- Attention, forward and backward, bf16 (fp32 where the CPU has no fast bf16), causal, SmolLM2's 9
  heads of 64: ``F.scaled_dot_product_attention`` left to pick its kernel (flash on CPU, the baseline)
  against ``tunelab.train.attention.attention``'s explicit math, at growing lengths; the crossover is
  what ``MAX_MATH_KEYS`` encodes.

Both sides of a row run in this process, interleaved, and the median of ``--repeat`` timings is shown.

    python benchmarks/cpu_kernels.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

from tunelab.train.attention import MAX_MATH_KEYS, attention
from tunelab.train.fast_dropout import fast_dropout


class _Causal(torch.nn.Module):
    is_causal = True


def timed(fns: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """Median milliseconds of each function, the functions called in turn ``repeat`` times."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def dropout_pair(shape: tuple[int, ...], p: float, dtype: torch.dtype) -> dict[str, Callable[[], None]]:
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    g = torch.randn(shape, dtype=dtype)
    return {
        "torch": lambda: F.dropout(x, p, True).backward(g),
        "fast": lambda: fast_dropout(x, p).backward(g),
    }


def attention_pair(batch: int, length: int, dtype: torch.dtype) -> dict[str, Callable[[], None]]:
    q, k, v = (torch.randn(batch, 9, length, 64, dtype=dtype, requires_grad=True) for _ in range(3))
    module = _Causal()

    def sdpa() -> None:
        F.scaled_dot_product_attention(q, k, v, is_causal=True).float().sum().backward()

    def math() -> None:
        out, _ = attention(module, q, k, v, None, max_math_keys=None, fast=False)
        out.float().sum().backward()

    return {"sdpa": sdpa, "math": math}


def dropout_rows(dtype: torch.dtype, repeat: int) -> list[list[str]]:
    rows = []
    for label, shape, p in [
        ("MiniLM hidden, batch 32 x 30", (32, 30, 384), 0.1),
        ("MiniLM attention probs", (32, 12, 30, 30), 0.1),
        ("SmolLM2 LoRA input, 8 x 64", (8, 64, 576), 0.05),
        ("SmolLM2 LoRA input (down_proj)", (8, 64, 1536), 0.05),
    ]:
        t = timed(dropout_pair(shape, p, dtype), repeat)
        rows.append([label, str(shape), f"{p}", f"{t['torch']:.3f}", f"{t['fast']:.3f}",
                     f"{t['torch'] / t['fast']:.2f}x"])
    return rows


def attention_rows(dtype: torch.dtype, repeat: int) -> list[list[str]]:
    rows = []
    for batch, length in [(8, 32), (8, 64), (8, 128), (8, 192), (4, 256), (4, 512), (2, 1024)]:
        t = timed(attention_pair(batch, length, dtype), repeat)
        auto = "math" if length <= MAX_MATH_KEYS else "sdpa"
        rows.append([f"{batch} x {length}", f"{t['sdpa']:.2f}", f"{t['math']:.2f}",
                     f"{t['sdpa'] / t['math']:.2f}x", auto])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="timings per side and row (the median is shown)")
    args = ap.parse_args()
    dtype = torch.bfloat16 if C.fast_bf16() else torch.float32
    C.print_machine(C.machine(), C.matmul_peak())
    print(f"kernels timed in {dtype}")
    print("\ndropout, forward + backward, ms (median)")
    C.print_table(["activations", "shape", "p", "torch", "fast_dropout", "speed-up"],
                  dropout_rows(dtype, args.repeat))
    print(f"\ncausal attention, 9 heads of 64, forward + backward, ms (median); auto: math up to "
          f"{MAX_MATH_KEYS} keys")
    C.print_table(["batch x length", "sdpa (flash)", "math", "math speed-up", "auto picks"],
                  attention_rows(dtype, args.repeat))


if __name__ == "__main__":
    main()
