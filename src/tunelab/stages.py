"""Shared plumbing of the stages: what each reads, its fingerprint, and the label list."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tunelab.config import Recipe
from tunelab.runs import RunDir, file_sha256, read_jsonl


def fingerprint(recipe: Recipe, sections: tuple[str, ...], files: list[Path]) -> str:
    """Hash of the recipe sections a stage depends on and of its input files."""
    h = hashlib.sha256()
    dumped = recipe.model_dump(mode="json")
    h.update(json.dumps({k: dumped[k] for k in sections}, sort_keys=True).encode())
    for f in files:
        h.update(f.name.encode())
        h.update(file_sha256(f).encode() if f.is_file() else b"-")
    return h.hexdigest()[:16]


def split_path(run_dir: RunDir, split: str) -> Path:
    return run_dir.require(f"data/{split}.jsonl", "data")


def load_split(run_dir: RunDir, split: str) -> list[dict[str, Any]]:
    return read_jsonl(split_path(run_dir, split))


def load_labels(run_dir: RunDir, recipe: Recipe) -> list[str] | None:
    if recipe.task != "classification":
        return None
    return json.loads(run_dir.require("data/labels.json", "data").read_text(encoding="utf-8"))["labels"]
