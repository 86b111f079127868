"""The shipped recipes on the real bundled models and data: results that are right, not just present.

These take minutes on 2 CPU cores (marked ``slow``); they run in CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.cli.main import main
from tunelab.config import load_recipe
from tunelab.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_quickstart_reaches_080_test_accuracy(tmp_path, capfd):
    """The README's main job, unchanged but for where it writes, run as users run it: the CLI."""
    override = f"run.output_dir={tmp_path}"
    recipe = load_recipe(ROOT / "configs/quickstart.yaml", [override])
    assert main(["run", str(ROOT / "configs/quickstart.yaml"), override]) == 0
    out, err = capfd.readouterr()  # fd-level: transformers' own log handler writes to the real stderr
    run = recipe.run_dir_path()
    _check_cli_output(out + err, run)
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["accuracy"]["value"] >= 0.80, ev["accuracy"]
    cmp = json.loads((run / "metrics/comparison.json").read_text())["metrics"]["accuracy"]
    assert cmp["improved"] and cmp["tuned"]["low"] > cmp["base"]["high"], "the gain is beyond the noise"
    report = json.loads((run / "data/data_report.json").read_text())
    assert report["summary"], "the data stage wrote its report"


def _check_cli_output(printed: str, run: Path) -> None:
    """The summary, the data warnings and our own model-loading line; none of the libraries' noise."""
    for needle in ("summary", "rows read", "quarantined", "splits", "accuracy", f"run directory: {run}"):
        assert needle in printed, (needle, printed[-4000:])
    assert f"data report: {run / 'data/data_report.html'}" in printed
    assert "new classification head: 2 labels (fresh, rotten)" in printed
    assert "LOAD REPORT" not in printed and "Loading weights" not in printed
    warnings = json.loads((run / "data/data_report.json").read_text())["warnings"]
    if warnings:  # the block comes after the summary, one line each
        block = printed.split(f"data report: {run / 'data/data_report.html'}", 1)[1]
        assert "warnings" in block and "  - " in block


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
