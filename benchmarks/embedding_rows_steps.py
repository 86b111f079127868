"""Step time with ``train.used_embedding_rows`` on against off, paired in one process.

Whole runs on a shared CPU drift by more than the few percent this switch saves, so two MiniLM
classifiers (the same weights, every other speed switch as ``auto`` resolves it on this machine) are
stepped alternately on the same batches of the benchmark's Rotten Tomatoes rows: forward, backward,
clipping and fused AdamW, in bf16 autocast where the machine has fast bf16. The order alternates per
batch, so a drift of the machine reaches both alike. The baseline is the switch off.

    python benchmarks/embedding_rows_steps.py [--train-rows 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-rows", type=int, default=3000)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from accelerate import Accelerator
    from train_throughput import CONFIG, minilm_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.batching import epoch_batches
    from tunelab.config.train import TrainConfig
    from tunelab.runs import read_jsonl
    from tunelab.tasks import get_task
    from tunelab.train.allocator import keep_freed_memory
    from tunelab.train.optim import build_optimizer
    from tunelab.train.padding import pad_batch
    from tunelab.train.precision import choose_precision
    from tunelab.train.speed import Speed

    C.print_machine(C.machine(), {})
    with tempfile.TemporaryDirectory() as tmp:
        rows = read_jsonl(C.prepare(CONFIG, Path(tmp), args.train_rows, None) / "data" / "train.jsonl")
    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    labels = sorted({r["label"] for r in rows})
    ids = tok([r["text"] for r in rows], truncation=True, max_length=128)["input_ids"]
    feats = [{"input_ids": x, "labels": labels.index(r["label"])} for x, r in zip(ids, rows, strict=True)]
    lengths = [len(x) for x in ids]
    precision = choose_precision("auto", torch.device("cpu"))
    task = get_task("classification")
    acc = Accelerator(cpu=True, mixed_precision="bf16" if precision == "bf16" else "no")
    keep_freed_memory()  # as fit does on CPU with glibc, for both sides

    sides = {}
    for name, on in (("off", False), ("on", True)):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))
        cfg = TrainConfig(used_embedding_rows=on, learning_rate=5e-5, weight_decay=0.01)
        speed = Speed.resolve(cfg, task, model, torch.device("cpu"), precision, lengths,
                              {"intra_op_threads": torch.get_num_threads(), "inter_op_threads": 1},
                              feats, tok.pad_token_id)
        speed.apply(task, model)
        pad_to = speed.pad_to_multiple_of
        model.train()
        sides[name] = (model, build_optimizer(model, cfg), speed.used_embedding_rows)

    seconds = {name: 0.0 for name in sides}
    batches = epoch_batches(lengths, 32, 42, 0, True)
    for i, rows_of_batch in enumerate(batches):
        batch = task.collate([feats[k] for k in rows_of_batch], tok)
        batch = pad_batch(batch, pad_to, tok.pad_token_id)
        for name in ("off", "on") if i % 2 else ("on", "off"):
            model, optimizer, _ = sides[name]
            start = time.perf_counter()
            with acc.autocast():
                loss = model(**batch).loss
            loss.backward()
            acc.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i >= 3:  # the first batches warm the allocator and oneDNN up
                seconds[name] += time.perf_counter() - start
    vocab = sides["off"][0].get_input_embeddings().num_embeddings
    print(f"MiniLM, {len(batches) - 3} paired steps of batch 32, {precision}, padded to {pad_to}")
    print(f"  switch off (baseline): {seconds['off']:.2f} s, all {vocab:,} embedding rows trained")
    print(f"  switch on:             {seconds['on']:.2f} s, {sides['on'][2]:,} rows trained")
    print(f"  on is {seconds['off'] / seconds['on']:.3f}x the speed of off")


if __name__ == "__main__":
    main()
