"""Counterfactual audit of the quickstart's Rotten Tomatoes test split, every category: batched scoring
(what the audit stage does) against scoring each original and swapped text one at a time.

Uses the trained quickstart run when ``runs/quickstart`` has one (``make demo``), else MiniLM with a
fresh head (the timing is the same; the figures then mean nothing). Both ways score the same texts
and must give the same probabilities.

    .venv/bin/python benchmarks/audit_counterfactual.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import numpy as np
    import torch

    from tunelab.audit.config import KNOWN_CATEGORIES
    from tunelab.audit.counterfactual import load_lists
    from tunelab.audit.measure import build_pairs
    from tunelab.audit.scoring import class_probs
    from tunelab.config import load_recipe
    from tunelab.pipeline import run_stage
    from tunelab.runs import RunDir
    from tunelab.tasks import get_task

    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        trained = RunDir(ROOT / "runs" / "quickstart")
        over = [] if (trained.model / "tunelab_model.json").is_file() else [f"run.output_dir={tmp}"]
        recipe = load_recipe(ROOT / "configs" / "quickstart.yaml", over)
        run_dir = RunDir(recipe.run_dir_path())
        if not run_dir.data.joinpath("test.jsonl").is_file():
            run_stage("data", recipe)
        task = get_task("classification")
        labels = run_dir.labels()
        if over:
            model, tok = task.load_base(recipe, labels)
            print("runs/quickstart has no trained model (make demo): timing MiniLM with a fresh head")
        else:
            model, tok = task.load_tuned(run_dir.model, recipe, labels)
        model.eval()
        texts = [r["text"] for r in run_dir.split_rows("test")]
        pairs = build_pairs(texts, load_lists(list(KNOWN_CATEGORIES)))
        everything = [*texts, *(p.swapped for p in pairs)]
        print(f"{len(texts)} test texts, {len(pairs)} swapped texts over {', '.join(KNOWN_CATEGORIES)}")
        began = time.perf_counter()
        batched = class_probs(model, tok, everything, recipe.model.max_length, batch_size=32)
        t_batched = time.perf_counter() - began
        began = time.perf_counter()
        single = np.concatenate(
            [class_probs(model, tok, [t], recipe.model.max_length, 1) for t in everything]
        )
        t_single = time.perf_counter() - began
        print(f"  batched (32, length-sorted): {t_batched:7.1f} s")
        print(f"  one text at a time:          {t_single:7.1f} s")
        gap = np.abs(batched - single).max()
        print(f"  speed-up: {t_single / t_batched:.1f}x; largest probability difference {gap:.1e}")
        orig, swap = batched[: len(texts)], batched[len(texts) :]
        for category in KNOWN_CATEGORIES:
            idx = [k for k, p in enumerate(pairs) if p.category == category]
            rows = [pairs[k].row for k in idx]
            if idx:
                flips = (swap[idx].argmax(1) != orig[rows].argmax(1)).mean()
                print(f"  {category:<12} {len(idx):5d} swaps, flip rate {flips:.3f}")


if __name__ == "__main__":
    main()
