"""Whole lm runs (continued pretraining) on a tiny Llama, fully tuned and with a LoRA adapter."""

from __future__ import annotations

import json

import pytest
import torch
from tests.helpers import lm_recipe, lm_texts, run_without_tunelab, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline
from tunelab.runs import RunDir, read_jsonl
from tunelab.search.ranking import rank_models
from tunelab.tasks import get_task

PLAIN = """
import json, sys, torch
from transformers import AutoTokenizer
from {module} import {cls}
tok = AutoTokenizer.from_pretrained({path!r})
model = {cls}.from_pretrained({path!r}).eval()
ids = torch.tensor(json.loads(sys.stdin.read()))
with torch.no_grad():
    print(json.dumps(model(input_ids=ids).logits[:, -4:].tolist()))
"""


@pytest.fixture(scope="module", params=[False, True], ids=["full", "lora"])
def finished_run(request, tiny_llama, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    data = write_jsonl(tmp / "sums.jsonl", lm_texts(200))
    recipe = validate_recipe(lm_recipe(tiny_llama, data, tmp / "runs", adapter=request.param))
    return recipe, recipe.run_dir_path(), run_pipeline(recipe)


def test_text_rows_train_and_evaluate_by_perplexity(finished_run):
    recipe, run, results = finished_run
    assert [r.stage for r in results] == ["data", "train", "evaluate"]
    rows = read_jsonl(run / "data/train.jsonl")
    assert rows and all(set(r) >= {"text", "source"} and "label" not in r for r in rows)
    assert not (run / "data/labels.json").exists()
    adapter = (run / "model/adapter_config.json").is_file()
    assert adapter == (recipe.model.adapter.method == "lora")
    assert (run / ("model/adapter_model.safetensors" if adapter else "model/model.safetensors")).is_file()
    comparison = json.loads((run / "metrics/comparison.json").read_text())
    ppl = comparison["metrics"]["perplexity"]
    assert set(comparison["metrics"]) == {"perplexity"} and not ppl["higher_is_better"]
    assert ppl["improved"] and ppl["tuned"]["value"] < 0.5 * ppl["base"]["value"]
    assert comparison["paired_difference"]["perplexity"]["high"] < 0
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["perplexity"]["low"] <= ev["perplexity"]["value"] <= ev["perplexity"]["high"]
    preds = read_jsonl(run / "metrics/predictions.jsonl")
    assert len(preds) == ev["blocks"] == ev["n_examples"]
    assert sum(p["tokens"] for p in preds) == ev["scored_tokens"]
    summary = json.loads((run / "metrics/train_summary.json").read_text())
    assert summary["final_validation"]["perplexity"] > 1.0


def test_plain_transformers_or_peft_load_the_model_and_agree(finished_run, tiny_llama):
    recipe, run, _ = finished_run
    task = get_task("lm")
    model, tok = task.load_tuned(run / "model", recipe, None)
    block = task.encode(read_jsonl(run / "data/test.jsonl")[:4], tok, recipe)[0]["input_ids"]
    adapter = (run / "model/adapter_config.json").is_file()
    module, cls = "peft", "AutoPeftModelForCausalLM"
    if not adapter:
        module, cls = "transformers", "AutoModelForCausalLM"
    plain = torch.tensor(
        run_without_tunelab(PLAIN.format(module=module, cls=cls, path=str(run / "model")), [block])
    )
    with torch.no_grad():
        ours = model(input_ids=torch.tensor([block])).logits[:, -4:]
    torch.testing.assert_close(ours, plain, atol=1e-4, rtol=1e-4)
    if adapter:
        base = json.loads((run / "model/adapter_config.json").read_text())["base_model_name_or_path"]
        assert base == str(tiny_llama)


def test_rank_models_scores_validation_perplexity(finished_run, tiny_llama):
    recipe, run, _ = finished_run
    ranking = rank_models(recipe, RunDir(run), [str(tiny_llama)])
    (entry,) = ranking["candidates"]
    assert ranking["metric"] == "perplexity" and not ranking["higher_is_better"]
    assert entry["error"] is None and 1.0 < entry["score"] < 10 * 500  # a random model: near the vocab size
