"""Runs the deployment tests share: a tiny sft run and a tiny classifier, each trained, evaluated
and exported once per session (seconds each), for the export and serve tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import classification_recipe, qa_rows, sentiment_rows, sft_recipe, write_jsonl

from tunelab.config.load import validate_recipe
from tunelab.pipeline import open_run, run_pipeline


@pytest.fixture(scope="session")
def sft_exported(tiny_llama, tmp_path_factory) -> tuple:
    """(recipe, run dir) of a LoRA sft run: data, train, evaluate, export (int8 + GGUF), greedy generate."""
    out = tmp_path_factory.mktemp("sft-export")
    raw = sft_recipe(tiny_llama, write_jsonl(out / "qa.jsonl", qa_rows(160)), out, epochs=1)
    raw["stages"] = ["data", "train", "evaluate", "export", "generate"]
    raw["export"] = {"quantize": "int8", "format": "gguf", "verify_prompts": 3, "verify_max_new_tokens": 8}
    raw["generate"] = {"n_prompts": 4, "decoding": {"temperature": 0, "max_new_tokens": 8}}
    recipe = validate_recipe(raw)
    run_pipeline(recipe)
    return recipe, open_run(recipe).root


@pytest.fixture(scope="session")
def cls_exported(tiny_bert, tmp_path_factory) -> tuple:
    """(recipe, run dir) of a LoRA classifier: data, train, evaluate, export with int8."""
    out = tmp_path_factory.mktemp("cls-export")
    raw = classification_recipe(
        tiny_bert, write_jsonl(out / "reviews.jsonl", sentiment_rows(240)), out, epochs=2
    )
    raw["model"]["adapter"] = {"method": "lora", "r": 4, "alpha": 8, "target_modules": ["query", "value"]}
    raw["stages"] = ["data", "train", "evaluate", "export"]
    raw["export"] = {"quantize": "int8"}
    recipe = validate_recipe(raw)
    run_pipeline(recipe)
    return recipe, open_run(recipe).root


def served_app(target: Path, **settings):
    """(app, served) for ``target`` with the given ``serve`` settings (port 0: a free one)."""
    from tunelab.config.serve import ServeConfig
    from tunelab.serve.server import build

    app, served, _ = build(target, ServeConfig(port=0, **settings))
    return app, served
