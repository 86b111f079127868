"""The shipped recipes on the real bundled models and data: results that are right, not just present.

These take minutes on 2 CPU cores (marked ``slow``); they run in CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.config import load_recipe
from tunelab.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_quickstart_reaches_080_test_accuracy(tmp_path):
    """The README's main job, unchanged but for where it writes."""
    recipe = load_recipe(ROOT / "configs/quickstart.yaml", [f"run.output_dir={tmp_path}"])
    run_pipeline(recipe)
    run = recipe.run_dir_path()
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["accuracy"]["value"] >= 0.80, ev["accuracy"]
    cmp = json.loads((run / "metrics/comparison.json").read_text())["metrics"]["accuracy"]
    assert cmp["improved"] and cmp["tuned"]["low"] > cmp["base"]["high"], "the gain is beyond the noise"
    report = json.loads((run / "data/data_report.json").read_text())
    assert report["summary"], "the data stage wrote its report"


def test_sft_quickstart_lowers_perplexity_and_saves_an_adapter(tmp_path):
    """SmolLM2 + LoRA on chatterbot pairs, shortened to a few dozen steps for the test suite."""
    recipe = load_recipe(
        ROOT / "configs/sft-quickstart.yaml",
        [
            f"run.output_dir={tmp_path}",
            "train.max_steps=40",
            "evaluate.max_examples=80",
            "evaluate.generate_examples=4",
            "evaluate.bootstrap_samples=200",
        ],
    )
    run_pipeline(recipe)
    run = recipe.run_dir_path()
    ppl = json.loads((run / "metrics/comparison.json").read_text())["metrics"]["perplexity"]
    assert ppl["improved"] and ppl["tuned"]["value"] < ppl["base"]["value"]
    assert (run / "model/adapter_model.safetensors").is_file()
    adapter = json.loads((run / "model/adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and Path(adapter["base_model_name_or_path"]).is_dir()
