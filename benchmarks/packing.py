"""SFT with sequence packing against the same run without it: training tokens/s and final validation loss.

Both sides fine-tune the bundled SmolLM2-135M-Instruct with the LoRA adapter of
``configs/sft-quickstart.yaml`` on the same chatterbot train rows, for one epoch each (so both see every
example once), and are scored on the same validation rows. Without packing, batches are length-grouped
and padded (tunelab's default); with ``train.packing`` whole examples share rows of ``model.max_length``
tokens, so there is almost no padding and a step carries more examples. Each side runs in its own
process. Tokens/s counts real (non-padding) tokens in training steps only; ``padding_share`` is the
share of the tokens the model ran on that were padding. ``--max-steps`` caps both sides at the same
number of steps instead (then the packed side sees more examples).

    python benchmarks/packing.py [--train-rows 96] [--val-rows 32] [--batch-size 8] [--max-steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RECIPE = "configs/sft-quickstart.yaml"


def prepare(workdir: Path, train_rows: int, val_rows: int) -> Path:
    """Run the data stage of the quickstart recipe, then keep the first rows of train and validation."""
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage
    from tunelab.runs import atomic_write_jsonl, read_jsonl

    recipe = load_recipe(RECIPE, [f"run.output_dir={workdir}", "run.name=bench"])
    run_stage("data", recipe)
    data = recipe.run_dir_path() / "data"
    for split, n in (("train", train_rows), ("validation", val_rows)):
        atomic_write_jsonl(data / f"{split}.jsonl", read_jsonl(data / f"{split}.jsonl")[:n])
    return recipe.run_dir_path()


def padding_share(recipe, run_dir: Path, steps: int) -> float:
    """Share of padding in the batches the loop ran (rebuilt from the same features and batch order)."""
    from tunelab.batching import epoch_batches
    from tunelab.models.resolve import load_tokenizer
    from tunelab.runs import read_jsonl
    from tunelab.tasks import get_task

    task, cfg = get_task("sft"), recipe.train
    feats = task.encode(read_jsonl(run_dir / "data/train.jsonl"), load_tokenizer(recipe.model), recipe)
    if cfg.packing:
        feats = task.pack(feats, recipe.model.max_length)
    lengths = [len(f["input_ids"]) for f in feats]
    batches = epoch_batches(lengths, cfg.batch_size, recipe.run.seed, 0, cfg.group_by_length)
    ran = batches[: steps * cfg.grad_accum]
    real = sum(lengths[i] for b in ran for i in b)
    return 1 - real / sum(len(b) * max(lengths[i] for i in b) for b in ran)


def run_side(run_dir: Path, packing: bool, batch_size: int, max_steps: int | None) -> dict:
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage

    overrides = [
        f"run.output_dir={run_dir.parent}",
        f"run.name={run_dir.name}",
        f"train.packing={str(packing).lower()}",
        f"train.batch_size={batch_size}",
        "train.epochs=1",
        "train.eval_every=1000000",
        "train.log_every=1000000",  # one validation, at the end
    ]
    if max_steps:
        overrides.append(f"train.max_steps={max_steps}")
    recipe = load_recipe(RECIPE, overrides)
    m = run_stage("train", recipe, force=True).metrics
    return {
        "examples": m["train_examples"],
        "rows": m["train_rows"],
        "steps": m["steps"],
        "fit_seconds": m["seconds"],
        "tokens_per_s": m["train_tokens_per_s"],
        "padding_share": padding_share(recipe, run_dir, m["steps"]),
        "val_loss": m["final_validation"]["loss"],
        "val_perplexity": m["final_validation"]["perplexity"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-rows", type=int, default=96)
    ap.add_argument("--val-rows", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8, help="rows per batch (packed rows with packing)")
    ap.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="cap each side at this many steps (then they see different data)",
    )
    ap.add_argument("--side", choices=["plain", "packed"], help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:
        out = run_side(args.run_dir, args.side == "packed", args.batch_size, args.max_steps)
        print("RESULT " + json.dumps(out), flush=True)
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = prepare(Path(tmp), args.train_rows, args.val_rows)
        for side in ("plain", "packed"):  # the baseline first
            cmd = [
                sys.executable,
                __file__,
                "--side",
                side,
                "--run-dir",
                str(run_dir),
                "--batch-size",
                str(args.batch_size),
            ]
            if args.max_steps:
                cmd += ["--max-steps", str(args.max_steps)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"the {side} run failed:\n{out.stderr[-3000:]}")
            line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
            results[side] = json.loads(line[len("RESULT ") :])
    plain, packed = results["plain"], results["packed"]
    span = f"max {args.max_steps} steps" if args.max_steps else "1 epoch"
    print(
        f"\nSFT SmolLM2-135M-Instruct + LoRA (r=16), chatterbot: {args.train_rows} train rows, {span}, "
        f"{args.val_rows} validation rows, batch {args.batch_size} rows, max_length 128, "
        f"torch threads {_threads()}"
    )
    print(f"{'':<18}{'no packing':>14}{'packing':>14}{'ratio':>9}")
    for key, fmt in (
        ("examples", "{:,}"),
        ("rows", "{:,}"),
        ("steps", "{:,}"),
        ("fit_seconds", "{:.1f}"),
        ("tokens_per_s", "{:,.0f}"),
        ("padding_share", "{:.1%}"),
        ("val_loss", "{:.4f}"),
        ("val_perplexity", "{:.2f}"),
    ):
        ratio = packed[key] / plain[key] if plain[key] else float("nan")
        print(f"{key:<18}{fmt.format(plain[key]):>14}{fmt.format(packed[key]):>14}{ratio:>8.2f}x")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
