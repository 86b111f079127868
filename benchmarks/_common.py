"""What the training benchmarks share: each side in its own process, peak memory, the machine's
matmul peak and CPU capability, FLOP per token, and HF ``Trainer`` step timing that counts the way
tunelab does.

How tunelab counts (``tunelab.train.steps``): per optimiser step, the wall time from before the
batch is collated to after the optimiser and scheduler have stepped (collate, move to the device,
forward, backward, clip, step, zero the gradients); tokens are ``attention_mask.sum()`` of the batches
actually trained (no padding). Evaluation, saving, model load and tokenisation fall outside.
``StepTiming`` gives an HF ``Trainer`` the same figure: it times the data collator per batch and the
span ``on_step_begin`` -> ``on_step_end`` of each step, and counts the tokens of the batches the
steps consumed (a FIFO, since the dataloader fetches a batch ahead).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT = "RESULT "


# ---- one side per process -------------------------------------------------------------------------


def run_child(argv: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python argv...`` and return the dict it printed on its ``RESULT`` line, or ``{"error"}``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        out = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in out.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    tail = (out.stderr or out.stdout).strip().splitlines()[-6:]
    return {"error": f"exit {out.returncode}: " + " | ".join(tail)}


def interleaved(sides: dict[str, Callable[[], dict[str, Any]]], repeat: int) -> dict[str, dict[str, Any]]:
    """Run every side ``repeat`` times in rounds (A B C, C B A, A B C, ...), so a drift of the machine's
    speed reaches every side alike; each side's figures are those of its median-speed run, with every
    run's tokens/s in ``runs_tokens_per_s`` (in round order) and the largest peak memory of its runs."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for i in range(max(1, repeat)):
        for name in list(sides)[:: -1 if i % 2 else 1]:
            runs[name].append(sides[name]())
    out: dict[str, dict[str, Any]] = {}
    for name, results in runs.items():
        ok = [r for r in results if "tokens_per_s" in r]
        if not ok:
            out[name] = results[-1]
            continue
        ok.sort(key=lambda r: r["tokens_per_s"])
        median = dict(ok[(len(ok) - 1) // 2])
        median["runs_tokens_per_s"] = [round(r["tokens_per_s"], 1) for r in results if "tokens_per_s" in r]
        for key in ("peak_rss_mb", "peak_cuda_mb"):
            if all(key in r for r in ok):
                median[key] = max(r[key] for r in ok)
        out[name] = median
    return out


def round_ratios(a: dict[str, Any], b: dict[str, Any]) -> list[float]:
    """``a``'s tokens/s over ``b``'s, round by round (runs of one round ran minutes apart, while the
    machine's speed drifts over longer spans: the median of these is the steadier comparison)."""
    pairs = zip(a.get("runs_tokens_per_s", []), b.get("runs_tokens_per_s", []), strict=False)
    return [round(x / y, 3) for x, y in pairs if y]


def print_round_ratios(name: str, a: dict[str, Any], base: str, b: dict[str, Any]) -> None:
    ratios = round_ratios(a, b)
    if len(ratios) > 1:
        median = sorted(ratios)[(len(ratios) - 1) // 2]
        print(f"  {name} / {base}, round by round: {ratios} (median {median:.2f}x)")


def emit(result: dict[str, Any]) -> None:
    """The child's answer to ``run_child``: its figures plus its own peak memory."""
    print(RESULT + json.dumps({**result, **peak_memory()}), flush=True)


def peak_memory() -> dict[str, float]:
    """This process's peak resident memory (Linux ``ru_maxrss`` is KiB) and, on CUDA, peak allocated."""
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    import torch

    if torch.cuda.is_available():
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def peak_mb(r: dict[str, Any]) -> float:
    """The memory figure to print: GPU memory on CUDA, else resident memory."""
    return r.get("peak_cuda_mb", r.get("peak_rss_mb", float("nan")))


# ---- the machine ----------------------------------------------------------------------------------


def fast_bf16() -> bool:
    """bf16 is worth using: a bf16-capable GPU, or a CPU with AMX / AVX512-BF16 (tunelab's own test)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from tunelab.train.precision import cpu_has_fast_bf16

    return cpu_has_fast_bf16()


def machine() -> dict[str, Any]:
    """Device, torch CPU capability, the bf16 flags of /proc/cpuinfo and the thread count."""
    import torch

    from tunelab.train.precision import cpu_flags

    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text(errors="ignore"))
    except OSError:
        flags = set()
    out = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    import transformers

    out["transformers"] = transformers.__version__
    return out


def matmul_peak(seconds: float = 1.0) -> dict[str, dict[int, float]]:
    """GFLOP/s of square matmuls (2 n^3 FLOP each), all threads, per dtype and size."""
    import torch

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    sizes = (1024, 2048, 4096, 8192) if cuda else (1024, 2048)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    out: dict[str, dict[int, float]] = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        out[name] = {}
        for n in sizes:
            a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
            for _ in range(3):
                a @ b
            sync()
            iters, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for _ in range(10 if cuda else 1):  # a GPU loop syncs every 10 calls, not each one
                    a @ b
                    iters += 1
                sync()
            out[name][n] = 2 * n**3 * iters / (time.perf_counter() - start) / 1e9
    return out


def print_machine(info: dict[str, Any], peak: dict[str, dict[int, float]]) -> None:
    print(
        f"device {info['device']}, torch CPU capability {info['cpu_capability']}, "
        f"avx512_bf16={info['avx512_bf16']}, amx_bf16={info['amx_bf16']}, {info['threads']} threads, "
        f"torch {info['torch']}, transformers {info['transformers']}"
    )
    for name, by_size in peak.items():
        sizes = ", ".join(f"{n}: {g:,.0f}" for n, g in by_size.items())
        print(f"matmul peak {name} GFLOP/s ({sizes})")


# ---- FLOP per token -------------------------------------------------------------------------------


def linear_shapes(model_path: str, auto_class: str, **config_kw: Any) -> list[tuple[str, int, int]]:
    """(name, in, out) of every ``nn.Linear`` of the model, built on the meta device (no weights read)."""
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_path, **config_kw)
    with torch.device("meta"):
        model = getattr(transformers, auto_class).from_config(config)
    return [
        (name, m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
    ]


def attention_flop(model_path: str, mean_context: float) -> float:
    """PaLM's attention term, ``12 * layers * width * context`` per trained token (QK^T and AV,
    forward and backward, no discount for causal masking)."""
    import transformers

    c = transformers.AutoConfig.from_pretrained(model_path)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    width = c.num_attention_heads * head_dim
    return 12.0 * c.num_hidden_layers * width * mean_context


def token_weighted_length(lengths: list[int]) -> float:
    """Mean context a token attends over: sum(len^2) / sum(len)."""
    return sum(n * n for n in lengths) / max(sum(lengths), 1)


# ---- HF Trainer timing ----------------------------------------------------------------------------


def count_tokens(batch: dict[str, Any]) -> int:
    """Real tokens: the attention mask's ones, or every id for padding-free batches (tunelab's rule)."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())


class StepTiming:
    """Wrap a trainer's collator and add a callback; ``tokens`` / ``seconds`` then count like tunelab."""

    def __init__(self, trainer: Any) -> None:
        import torch
        from transformers import TrainerCallback

        self.collate, self.pending = trainer.data_collator, deque()
        self.tokens, self.seconds, self.steps, self.active, self._t0 = 0, 0.0, 0, False, 0.0
        sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
        timing = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                timing.active = True

            def on_step_begin(self, args, state, control, **kw):
                sync()
                timing._t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                sync()
                timing.seconds += time.perf_counter() - timing._t0
                for _ in range(min(args.gradient_accumulation_steps, len(timing.pending))):
                    seconds, tokens = timing.pending.popleft()
                    timing.seconds, timing.tokens = timing.seconds + seconds, timing.tokens + tokens
                timing.steps += 1

            def on_train_end(self, args, state, control, **kw):
                timing.active = False

        trainer.data_collator = self
        trainer.add_callback(Callback())

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        start = time.perf_counter()
        batch = self.collate(features)
        if self.active:
            self.pending.append((time.perf_counter() - start, count_tokens(batch)))
        return batch

    def figures(self) -> dict[str, float]:
        return {
            "tokens_per_s": self.tokens / max(self.seconds, 1e-9),
            "train_seconds": self.seconds,
            "train_tokens": self.tokens,
            "steps": self.steps,
        }


# ---- tunelab side ---------------------------------------------------------------------------------


def prepare(config: str, workdir: Path, train_rows: int | None, val_rows: int | None) -> Path:
    """Run tunelab's data stage on ``config``; keep the first rows of train / validation."""
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage
    from tunelab.runs import atomic_write_jsonl, read_jsonl

    recipe = load_recipe(config, [f"run.output_dir={workdir}", "run.name=bench"])
    run_stage("data", recipe)
    data = recipe.run_dir_path() / "data"
    for split, keep in (("train", train_rows), ("validation", val_rows)):
        if keep:
            atomic_write_jsonl(data / f"{split}.jsonl", read_jsonl(data / f"{split}.jsonl")[:keep])
    return recipe.run_dir_path()


def accepted(config: str, overrides: list[str]) -> str | None:
    """None if ``load_recipe`` takes the overrides, else its error (a key not there yet)."""
    from tunelab.config import load_recipe

    try:
        load_recipe(config, overrides)
    except Exception as exc:  # RecipeError, or whatever a half-added key raises
        return str(exc).splitlines()[-1][:160]
    return None


def run_tunelab(config: str, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """tunelab's train stage on the prepared ``run_dir``; its own figures from train_summary.json."""
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage

    recipe = load_recipe(
        config,
        [
            f"run.output_dir={run_dir.parent}",
            f"run.name={run_dir.name}",
            "train.eval_every=100000",  # one validation, after the last step
            *overrides,
        ],
    )
    run_stage("train", recipe, force=True)
    summary = json.loads((run_dir / "metrics/train_summary.json").read_text())
    return {
        "tokens_per_s": summary["train_tokens_per_s"],
        "wall_seconds": summary["seconds"],
        "steps": summary["steps"],
        "precision": summary["precision"],
        "final_validation": summary["final_validation"],
    }


# ---- ablation -------------------------------------------------------------------------------------

# Every switch off for an ablation's first row; a key the config does not take yet is left out.
ABLATION_OFF = (
    "train.precision=fp32",
    "train.group_by_length=false",
    "train.pad_to_multiple_of=1",
    "train.chunked_loss=false",
    "train.fast_dropout=false",
    "train.attention=sdpa",
    "train.pooled_last_layer=false",
    "train.keep_freed_memory=false",
    "train.used_embedding_rows=false",
    "train.batch_tokens=null",
    "train.compile=false",
    "train.gradient_checkpointing=false",
)


def ablation_rows(budget: int, compile: bool = True) -> list[tuple[str, list[str]]]:
    """(label, overrides) rows, each adding one switch to the rows before it; ``budget`` is the
    token budget of ``train.batch_tokens`` (batch size x mean example length: about as many rows a
    batch as before). ``compile=False`` leaves out the compile row (minutes of compiling on a CPU)."""
    rows = [
        ("all off: fp32, random batches", []),
        ("+ precision auto (bf16 where fast)", ["train.precision=auto"]),
        ("+ group_by_length", ["train.group_by_length=true"]),
        ("+ fast_dropout auto (on on CPU)", ["train.fast_dropout=auto"]),
        ("+ attention auto (math <= 128 keys on CPU)", ["train.attention=auto"]),
        ("+ chunked_loss auto", ["train.chunked_loss=auto"]),
        ("+ pooled_last_layer auto (first-token classifiers)", ["train.pooled_last_layer=auto"]),
        ("+ keep_freed_memory auto (glibc on CPU)", ["train.keep_freed_memory=auto"]),
        ("+ used_embedding_rows auto (full fine-tune on CPU)", ["train.used_embedding_rows=auto"]),
        ("+ pad_to_multiple_of auto (4 on CPU, 8 on CUDA)", ["train.pad_to_multiple_of=auto"]),
        (f"+ batch_tokens {budget}", [f"train.batch_tokens={budget}"]),
        ("+ compile (on: auto leaves it off on CPU)", ["train.compile=true"]),
        ("+ gradient_checkpointing (memory)", ["train.gradient_checkpointing=true"]),
    ]
    return [r for r in rows if compile or "train.compile=true" not in r[1]]


def run_ablation(
    config: str,
    base: list[str],
    rows: list[tuple[str, list[str]]],
    measure: Callable[[list[str]], dict[str, Any]],
    off: tuple[str, ...] = ABLATION_OFF,
) -> list[dict[str, Any]]:
    """Measure ``rows`` in order, each with its overrides added to those of the rows before it.

    A row whose overrides ``load_recipe`` rejects (a key not there yet) is marked ``not_available``;
    a row whose run fails keeps its error and its switch is dropped again, so later rows still run.
    """
    kept = [o for o in off if accepted(config, [*base, o]) is None]
    out: list[dict[str, Any]] = []
    first = prev = None
    for label, extra in rows:
        why = accepted(config, base + kept + extra)
        if why is not None:
            out.append({"feature": label, "overrides": extra, "not_available": why})
            continue
        r = measure(kept + extra)
        row = {"feature": label, "overrides": kept + extra, **r}
        if "error" not in r:
            kept += extra
            first = first or r
            row["vs_prev"] = r["tokens_per_s"] / (prev or r)["tokens_per_s"]
            row["vs_first"] = r["tokens_per_s"] / first["tokens_per_s"]
            prev = r
        out.append(row)
    return out


def print_ablation(out: list[dict[str, Any]], flop: float, peak, title: str, key: str, fmt: str) -> None:
    """The ablation table; ``title`` / ``key`` / ``fmt`` name the validation figure."""
    rows = []
    for r in out:
        if "not_available" in r or "error" in r:
            rows.append([r["feature"], "not available" if "not_available" in r else "failed", *[""] * 6])
            continue
        gflops, share = efficiency(r, flop, peak)
        rows.append([
            r["feature"], f"{r['tokens_per_s']:,.0f}", f"{r['vs_prev']:.2f}x", f"{r['vs_first']:.2f}x",
            f"{peak_mb(r):,.0f}", fmt.format(r[key]), f"{gflops:,.1f}", f"{share:.1%}",
        ])
    print_table(
        ["feature", "tokens/s", "vs previous", "vs first", "peak MB", title, "GFLOP/s", "of matmul peak"],
        rows,
    )
    for r in out:
        if "not_available" in r or "error" in r:
            print(f"  {r['feature']}: {r.get('not_available') or r.get('error')}")


# ---- output ---------------------------------------------------------------------------------------


def efficiency(r: dict[str, Any], flop: float, peak: dict[str, dict[int, float]]) -> tuple[float, float]:
    """Achieved GFLOP/s and its share of the matmul peak in the side's precision."""
    gflops = r["tokens_per_s"] * flop / 1e9
    return gflops, gflops / max(peak[r.get("precision", "fp32")].values())


def ratio(r: dict[str, Any], ref: dict[str, Any]) -> str:
    return f"{r['tokens_per_s'] / ref['tokens_per_s']:.2f}x" if "tokens_per_s" in ref else "-"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """First column left-aligned, the others right-aligned, each as wide as its widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    for r in [headers, *rows]:
        cells = [f"{r[0]:<{widths[0]}}"] + [f"{x:>{w}}" for x, w in zip(r[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=str))
        print(f"\nwrote {path}")
