"""Strategies, a loss, a tunelab head and packing, chosen in the recipe, run whole pipelines."""

from __future__ import annotations

import json

from tests.helpers import classification_recipe, qa_rows, sentiment_rows, sft_recipe, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline

STRATEGIES = [
    {"name": "gradual_unfreezing", "every": 2},
    {"name": "layerwise_lr", "decay": 0.9},
    {"name": "curriculum", "difficulty": "length", "pacing": "competence", "full_at": 0.3},
    {"name": "early_stopping", "patience": 3, "metric": "accuracy"},
]


def test_classification_recipe_with_every_strategy(tiny_bert, tmp_path):
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(200))
    raw = classification_recipe(tiny_bert, data, tmp_path / "runs", epochs=6, eval_every=10,
                                learning_rate=6e-3,
                                loss={"name": "focal", "gamma": 2.0}, strategies=STRATEGIES)
    raw["model"].update(head={"type": "mlp", "pooling": "mean"}, dropout={"hidden": 0.05})
    raw["evaluate"]["compare_base"] = False
    recipe = validate_recipe(raw)
    run_pipeline(recipe)
    run = recipe.run_dir_path()
    summary = json.loads((run / "metrics/train_summary.json").read_text())
    assert summary["best_metric"]["accuracy"] >= 0.9
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["accuracy"]["value"] >= 0.8, "the saved tunelab head reloads and scores the test split"
    assert (run / "model/tunelab_head.json").is_file()


def test_sft_recipe_with_packing(tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_rows(120))
    raw = sft_recipe(tiny_llama, data, tmp_path / "runs", packing=True, epochs=2, eval_every=8, batch_size=2)
    raw["model"]["max_length"] = 128
    raw["evaluate"].update(generate_examples=0)
    recipe = validate_recipe(raw)
    run_pipeline(recipe)
    run = recipe.run_dir_path()
    summary = json.loads((run / "metrics/train_summary.json").read_text())
    assert summary["train_rows"] < summary["train_examples"] / 2, "several examples per packed row"
    ppl = json.loads((run / "metrics/comparison.json").read_text())["metrics"]["perplexity"]
    assert ppl["improved"] and ppl["tuned"]["value"] < 0.7 * ppl["base"]["value"]
