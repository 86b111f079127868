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


def scored_rows(n: int, seed: int = 0) -> list[dict]:
    """Reviews with a numeric score: about +1 with a positive word, -1 with a negative one (learnable)."""
    rng = random.Random(seed)
    rows = []
    for r in sentiment_rows(n, seed):
        sign = 1.0 if r["label"] == "pos" else -1.0
        rows.append({"text": r["text"], "label": round(sign + rng.gauss(0.0, 0.1), 4)})
    return rows


TAGS = {"upbeat": POS, "downbeat": NEG, "question": ["what ?"]}


def tagged_rows(n: int, seed: int = 0, delimiter: str | None = None) -> list[dict]:
    """Texts tagged by which kinds of words they hold (a positive word, a negative one, a question).

    Labels are lists, or one ``delimiter``-joined string. Every row has at least one tag.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tags = [t for t in TAGS if rng.random() < 0.5] or [rng.choice(list(TAGS))]
        words = rng.choices(FILLER, k=rng.randint(3, 7))
        for t in tags:
            words.insert(rng.randrange(len(words) + 1), rng.choice(TAGS[t]))
        label = delimiter.join(tags) if delimiter else tags
        rows.append({"text": " ".join(words) + f" {i}", "label": label})
    return rows


def lm_texts(n: int, seed: int = 0) -> list[dict]:
    """Short, very regular sums ("what is 3 plus 4 ? it is 7 ."): a tiny causal LM learns them fast."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"text": f"what is {a} plus {b} ? it is {a + b} . ( {i} )"})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def regression_recipe(model_dir: Path, data: Path, out: Path, **train) -> dict:
    raw = classification_recipe(model_dir, data, out, **train)
    raw["run"]["name"], raw["task"] = "reg", "regression"
    return raw


def multilabel_recipe(model_dir: Path, data: Path, out: Path, delimiter: str | None = None, **train) -> dict:
    raw = classification_recipe(model_dir, data, out, **train)
    raw["run"]["name"], raw["task"] = "tags", "multilabel"
    if delimiter:
        raw["data"]["label_delimiter"] = delimiter
    return raw


def lm_recipe(model_dir: Path, data: Path, out: Path, adapter: bool = False, **train) -> dict:
    model: dict = {"name": str(model_dir), "max_length": 32}
    if adapter:
        model["adapter"] = {"method": "lora", "r": 4, "alpha": 8, "target_modules": "all-linear"}
    return {
        "run": {"name": "lm-lora" if adapter else "lm", "output_dir": str(out), "seed": 7},
        "task": "lm",
        "data": {"sources": [{"path": str(data)}], "split": {"stratify": False}},
        "model": model,
        "train": {"epochs": 4, "batch_size": 8, "learning_rate": 2e-2 if adapter else 5e-3,
                  "eval_every": 10, **train},
        "evaluate": {"bootstrap_samples": 50},
    }


def run_without_tunelab(script: str, payload) -> object:
    """Run ``script`` in a fresh interpreter with ``payload`` as JSON on stdin; return its last JSON line.

    The script must not import tunelab (checked after it runs): the artifacts stand on their own.
    """
    import subprocess
    import sys

    check = '\nimport sys as _s\nassert "tunelab" not in _s.modules, "tunelab was imported"\n'
    out = subprocess.run(
        [sys.executable, "-c", script + check],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
