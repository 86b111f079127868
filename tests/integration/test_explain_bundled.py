"""`tunelab explain` on the real bundled models (slow): MiniLM fine-tuned on Rotten Tomatoes, and SmolLM2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tunelab.config import load_recipe
from tunelab.pipeline import run_stage

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# A fixed sentiment lexicon of common review words (see the file's header).
LEXICON = ROOT / "tests/data/sentiment_lexicon.txt"
SENTIMENT = {w for line in LEXICON.read_text().splitlines() if not line.startswith("#") for w in line.split()}


def _examples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]


def test_explain_minilm_on_rotten_tomatoes(minilm_run):
    from tests.browser import browser_missing, open_page

    path, overrides = minilm_run
    recipe = load_recipe(
        path,
        [
            *overrides,
            "explain.n=8",
            "explain.global_importance.n=150",
            "explain.layers.max_examples=150",
            "explain.select=[confident]",
        ],
    )
    result = run_stage("explain", recipe)
    folder = recipe.run_dir_path() / "explain"
    for name in (
        "examples.jsonl",
        "global.json",
        "rules.txt",
        "rules.json",
        "layers.json",
        "faithfulness.json",
        "attention.json",
        "index.html",
    ):
        assert (folder / name).is_file(), name
    hits = []
    for ex in _examples(folder):
        scores = np.asarray(ex["methods"]["integrated_gradients"]["words"])
        top3 = {ex["words"][i].lower() for i in np.argsort(-scores)[:3]}
        hits.append(bool(top3 & SENTIMENT))
    assert np.mean(hits) > 0.5, hits
    labels = json.loads((folder / "global.json").read_text())["labels"]
    for label in ("fresh", "rotten"):
        top = [t["word"] for t in labels[label]["top"][:5]]
        assert set(top) & SENTIMENT, (label, top)
    faith = json.loads((folder / "faithfulness.json").read_text())["methods"]
    assert faith["integrated_gradients"]["comprehensiveness"] > faith["random"]["comprehensiveness"]
    page = (folder / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert result.metrics["examples"] == 8
    if browser_missing() is None:
        with open_page(folder / "index.html") as visit:
            assert not visit.requests and not visit.console_errors
            assert "Faithfulness" in visit.visible_headings()


def test_explain_smollm2_answer_attribution_and_logit_lens(tmp_path):
    recipe = load_recipe(
        ROOT / "configs/sft-quickstart.yaml",
        [
            f"run.output_dir={tmp_path}",
            "explain.n=1",
            "explain.texts=['What is the capital of France?']",
            "explain.methods=[integrated_gradients,gradient_x_input,occlusion,attention]",
            "explain.ig_steps=16",
            "explain.max_new_tokens=8",
            "explain.global_importance.n=8",
            "explain.layers.max_examples=16",
        ],
    )
    run_stage("data", recipe)
    run_stage("explain", recipe, base=True)
    folder = recipe.run_dir_path() / "explain"
    ex = _examples(folder)
    assert ex[0]["answer"]["source"] == "generated" and ex[0]["answer"]["text"].strip()
    assert len(ex[0]["per_answer_token"]) == len(ex[0]["answer"]["tokens"])
    words = [w.lower() for w in ex[0]["words"]]
    assert "france" in words and "system" not in words  # only the user's words are ranked
    lens = json.loads((folder / "layers.json").read_text())["logit_lens"]
    assert lens["layers"] == 31 and lens["last_layer_max_abs_diff"] < 1e-3
    assert (folder / "index.html").is_file()
