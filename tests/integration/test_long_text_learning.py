"""model.long_text on a task only the end of a long text decides: the last word of 60-80 filler words
is the label. Truncated to 32 tokens a tiny BERT never sees it (chance); head_tail and chunk learn it."""

from __future__ import annotations

import json
import random

import pytest
from tests.helpers import FILLER, classification_recipe, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline
from tunelab.runs import read_jsonl
from tunelab.tasks.base import MODEL_INFO

DECIDES = {"pos": "great", "neg": "awful"}  # never among the filler words


def end_decides_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.choices(FILLER, k=rng.randint(60, 80))
        rows.append({"text": " ".join([*words, str(i % 100), DECIDES[label]]), "label": label})
    return rows


@pytest.fixture(scope="module")
def runs(tiny_bert, tmp_path_factory) -> dict[str, tuple]:
    tmp = tmp_path_factory.mktemp("long-text")
    data = write_jsonl(tmp / "long.jsonl", end_decides_rows(400))
    out = {}
    for mode in ("truncate", "head_tail", "chunk"):
        raw = classification_recipe(tiny_bert, data, tmp / "runs", epochs=6, batch_size=32)
        raw["run"]["name"] = mode
        raw["data"]["dedup"] = {"near": {"enabled": False}, "leakage": "off"}  # random filler looks alike
        raw["model"].update(max_length=32, long_text=mode, chunk={"stride": 2})
        raw["evaluate"]["bootstrap_samples"] = 20
        recipe = validate_recipe(raw)
        run_pipeline(recipe)
        run = recipe.run_dir_path()
        out[mode] = (
            json.loads((run / "metrics/eval.json").read_text()),
            json.loads((run / "metrics/train_summary.json").read_text()),
            run,
        )
    return out


def test_only_head_tail_and_chunk_read_the_deciding_end(runs):
    accuracy = {mode: ev["accuracy"]["value"] for mode, (ev, _, _) in runs.items()}
    assert accuracy["truncate"] <= 0.7, accuracy
    assert accuracy["head_tail"] >= 0.85 and accuracy["chunk"] >= 0.85, accuracy


def test_chunk_trains_on_windows_and_reports_rows(runs):
    ev, summary, run = runs["chunk"]
    test_rows = read_jsonl(run / "data/test.jsonl")
    preds = read_jsonl(run / "metrics/predictions.jsonl")
    assert ev["n_examples"] == len(preds) == len(test_rows), "one prediction per row, not per window"
    assert [p["text"] for p in preds] == [r["text"] for r in test_rows]
    train_rows = len(read_jsonl(run / "data/train.jsonl"))
    assert summary["train_examples"] == train_rows < summary["train_windows"]
    assert summary["validation_examples"] == len(read_jsonl(run / "data/validation.jsonl"))
    assert "train_windows" not in runs["truncate"][1] and runs["truncate"][1]["train_examples"] == train_rows
    info = json.loads((run / "model" / MODEL_INFO).read_text())
    assert info["long_text"] == "chunk" and info["chunk"]["stride"] == 2 and info["max_length"] == 32
    report = json.loads((run / "data/data_report.json").read_text())
    assert report["long_texts"]["splits"]["train"]["share"] == 1.0

