"""A whole SFT run on a tiny Llama with LoRA: answer-only loss, lower perplexity, plain-peft reload."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from tests.helpers import qa_rows, sft_recipe, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline
from tunelab.runs import RunDir, read_jsonl
from tunelab.tasks import get_task


@pytest.fixture(scope="module")
def finished_run(tiny_llama, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sft")
    data = write_jsonl(tmp / "qa.jsonl", qa_rows(160))
    recipe = validate_recipe(sft_recipe(tiny_llama, data, tmp / "runs"))
    run_pipeline(recipe)
    return recipe, recipe.run_dir_path()


def test_perplexity_drops_against_base(finished_run):
    _, run = finished_run
    cmp = json.loads((run / "metrics/comparison.json").read_text())["metrics"]
    ppl = cmp["perplexity"]
    assert ppl["improved"] and ppl["tuned"]["value"] < 0.5 * ppl["base"]["value"]
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert 0.0 <= ev["rouge_l"]["value"] <= 1.0 and ev["samples"]


def test_adapter_is_saved_and_loads_with_plain_peft(finished_run):
    recipe, run = finished_run
    assert (run / "model/adapter_config.json").is_file()
    assert (run / "model/adapter_model.safetensors").is_file()
    assert not (run / "model/model.safetensors").exists(), "only the adapter, not a full copy"
    rows = read_jsonl(run / "data/test.jsonl")[:4]
    task = get_task("sft")
    model, tok = task.load_tuned(run / "model", recipe, None)
    feats = task.encode(rows, tok, recipe)
    batch = task.collate(feats, tok)
    with torch.no_grad():
        ours = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    script = f"""
import json, sys, torch
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained({str(run / "model")!r}).eval()
batch = json.loads(sys.stdin.read())
with torch.no_grad():
    ids, mask = torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])
    out = model(input_ids=ids, attention_mask=mask)
print(json.dumps(out.logits.tolist()))
assert "tunelab" not in sys.modules
"""
    payload = json.dumps({k: batch[k].tolist() for k in ("input_ids", "attention_mask")})
    out = subprocess.run(
        [sys.executable, "-c", script], input=payload, capture_output=True, text=True, check=True
    )
    plain = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1]))
    torch.testing.assert_close(ours, plain, atol=1e-5, rtol=1e-4)


def test_loss_covers_answer_tokens_only(finished_run):
    recipe, run = finished_run
    task = get_task("sft")
    _, tok = task.load_base(recipe)
    row = read_jsonl(run / "data/train.jsonl")[0]
    feat = task.encode([row], tok, recipe)[0]
    answer_ids = [t for t, lab in zip(feat["input_ids"], feat["labels"], strict=True) if lab != -100]
    answer = tok.decode(answer_ids)
    assert answer.startswith(row["messages"][-1]["content"])
    assert "<|im_end|>" in answer and "user" not in answer
    assert RunDir(run).stage_record("train")["status"] == "done"
