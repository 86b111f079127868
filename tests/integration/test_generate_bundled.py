"""`tunelab generate` on the bundled SmolLM2 (slow): the sweep's diversity moves with temperature,
and synthetic pairs from the chatterbot seeds are new, valid and readable by the data stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config import load_recipe
from tunelab.config.load import validate_recipe
from tunelab.data.minhash import shingles
from tunelab.pipeline import run_stage
from tunelab.runs import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _recipe(tmp_path: Path, *extra: str):
    return load_recipe(ROOT / "configs/sft-quickstart.yaml", [f"run.output_dir={tmp_path}", *extra])


def test_sweep_diversity_rises_with_temperature_and_greedy_repeats_itself(tmp_path):
    recipe = _recipe(
        tmp_path,
        "generate.n_prompts=6",
        "generate.decoding.temperature=0",
        "generate.decoding.num_samples=3",
        "generate.decoding.max_new_tokens=24",
        "generate.sweep.enabled=true",
        "generate.sweep.temperatures=[0.3,1.2]",
        "generate.sweep.top_ps=[1.0]",
        "generate.sweep.prompts=6",
        "generate.sweep.num_samples=4",
    )
    run_stage("data", recipe)
    run_stage("generate", recipe, base=True)
    folder = recipe.run_dir_path() / "generate"
    greedy = json.loads((folder / "diversity.json").read_text())["within"]
    assert greedy["self_bleu"] == pytest.approx(1.0)  # three identical greedy samples per prompt
    rows = {r["temperature"]: r for r in json.loads((folder / "sweep.json").read_text())["rows"]}
    cold, hot = rows[0.3], rows[1.2]
    assert hot["distinct_2"] > cold["distinct_2"]
    assert hot["self_bleu"] < cold["self_bleu"]


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a.lower())), set(shingles(b.lower()))
    return len(sa & sb) / max(1, len(sa | sb))


def test_twenty_synthetic_pairs_from_the_chatterbot_seeds(tmp_path):
    recipe = _recipe(
        tmp_path,
        "generate.synthetic.enabled=true",
        "generate.synthetic.n=20",
        "generate.synthetic.max_rounds=8",
        "generate.synthetic.decoding.max_new_tokens=48",
        "generate.batch_size=16",
    )
    run_stage("data", recipe)
    run_stage("generate", recipe, base=True)
    run = recipe.run_dir_path()
    rows = read_jsonl(run / "generate/synthetic.jsonl")
    report = json.loads((run / "generate/synthetic_report.json").read_text())
    assert len(rows) == 20 and report["complete"], report["reason"]
    held = [r for s in ("train", "validation", "test") for r in read_jsonl(run / f"data/{s}.jsonl")]
    held_prompts = {r["messages"][0]["content"].strip().lower() for r in held}
    for row in rows:
        user, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        assert user.strip() and answer.strip()
        assert row["provenance"]["model"] and row["provenance"]["decoding"]["temperature"] > 0
        assert set(row["provenance"]["filters"].values()) == {"pass"}
        assert user.strip().lower() not in held_prompts
        assert max(_jaccard(user, h["messages"][0]["content"]) for h in held) < 0.8
    # the data stage reads the synthetic file as a source
    raw = {
        "run": {"name": "synthetic", "output_dir": str(tmp_path)},
        "task": "sft",
        "data": {"sources": [{"path": str(run / "generate/synthetic.jsonl")}], "split": {"stratify": False}},
    }
    result = run_stage("data", validate_recipe(raw))
    assert result.metrics["rows_kept"] == 20
