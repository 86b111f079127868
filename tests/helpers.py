"""Builders shared by tests: synthetic rows and small recipes."""

from __future__ import annotations

import json
import random
from pathlib import Path

# Adjectives for distinct synthetic reviews (random picks make near-duplicates unlikely).
REVIEW_WORDS = [
    "grand",
    "dull",
    "witty",
    "slow",
    "tender",
    "loud",
    "sharp",
    "flat",
    "bright",
    "stale",
    "moving",
    "clumsy",
    "gentle",
    "brutal",
    "warm",
    "cold",
    "clever",
    "silly",
    "long",
    "brief",
    "honest",
    "fake",
    "bold",
    "timid",
    "lush",
    "bare",
    "noisy",
    "quiet",
    "rich",
    "thin",
    "fresh",
    "tired",
]
POS = ["great", "wonderful", "moving", "brilliant", "funny", "charming", "superb", "delightful"]
NEG = ["dull", "awful", "boring", "tedious", "clumsy", "bland", "messy", "lifeless"]
FILLER = ["the", "film", "movie", "story", "cast", "plot", "is", "was", "a", "really", "quite", "and"]


def sentiment_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Synthetic reviews whose label is decided by one sentiment word: learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.choices(FILLER, k=rng.randint(3, 9))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label == "pos" else NEG))
        rows.append({"text": " ".join(words) + f" {i}", "label": label})
    return rows


def qa_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"prompt": f"what is {a} plus {b} ? ({i})", "response": f"it is {a + b} ."})
    return rows


def corpus() -> list[str]:
    words = POS + NEG + FILLER + ["what", "plus", "it", "?", "(", ")", "."] + [str(i) for i in range(100)]
    return [" ".join(words)] * 3


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def classification_recipe(model_dir: Path, data: Path, out: Path, **train) -> dict:
    return {
        "run": {"name": "cls", "output_dir": str(out), "seed": 7},
        "task": "classification",
        "data": {"sources": [{"path": str(data)}]},
        "model": {"name": str(model_dir), "max_length": 32},
        "train": {
            "epochs": 8,
            "batch_size": 16,
            "learning_rate": 3e-3,
            "eval_every": 12,
            "log_every": 4,
            **train,
        },
        "evaluate": {"bootstrap_samples": 50},
    }


def sft_recipe(model_dir: Path, data: Path, out: Path, **train) -> dict:
    return {
        "run": {"name": "sft", "output_dir": str(out), "seed": 7},
        "task": "sft",
        "data": {"sources": [{"path": str(data)}], "split": {"stratify": False}},
        "model": {
            "name": str(model_dir),
            "max_length": 64,
            "adapter": {"method": "lora", "r": 4, "alpha": 8, "target_modules": "all-linear"},
        },
        "train": {"epochs": 6, "batch_size": 8, "learning_rate": 2e-2, "eval_every": 16, **train},
        "evaluate": {"bootstrap_samples": 50, "generate_examples": 4, "max_new_tokens": 6},
    }
