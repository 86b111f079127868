"""The lm task: plain text joined into blocks of model.max_length, causal-LM loss on every real token."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from tests.helpers import lm_recipe, lm_texts
from tests.unit.train.fit_helpers import run_fit

from tunelab.batching import IGNORE, eval_batches
from tunelab.config import validate_recipe
from tunelab.metrics.registry import value
from tunelab.models.adapters import apply_adapter
from tunelab.tasks import get_task


def _recipe(model_dir, tmp_path, adapter: bool = False, model: dict | None = None, **train):
    raw = lm_recipe(model_dir, tmp_path / "unused.jsonl", tmp_path / "runs", adapter, **train)
    raw["model"].update(model or {})
    return validate_recipe(raw)


def test_texts_become_blocks_ended_by_eos(tiny_llama, tmp_path):
    recipe = _recipe(tiny_llama, tmp_path, model={"max_length": 16})
    task = get_task("lm")
    _, tok = task.load_base(recipe)
    rows = lm_texts(10)
    feats = task.encode(rows, tok, recipe)
    joined = []
    for r in rows:
        joined += [*tok(r["text"])["input_ids"], tok.eos_token_id]
    assert [t for f in feats for t in f["input_ids"]] == joined  # every token, in order, once
    assert all(len(f["input_ids"]) == 16 for f in feats[:-1]) and 2 <= len(feats[-1]["input_ids"]) <= 16
    assert all(f["labels"] == f["input_ids"] for f in feats)
    spans = task._spans
    assert len(spans) == len(feats) and spans[0][0] == 0 and spans[-1][1] == len(rows) - 1
    assert task.pack(feats, 16) is feats  # already packed


def test_collate_pads_right_and_does_not_score_padding(tiny_llama, tmp_path):
    recipe = _recipe(tiny_llama, tmp_path)
    task = get_task("lm")
    _, tok = task.load_base(recipe)
    feats = [{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = task.collate(feats, tok)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, tok.pad_token_id, tok.pad_token_id]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_no_chat_template_needed_and_no_classification_head(tiny_llama, tmp_path):
    plain = tmp_path / "plain-llama"
    shutil.copytree(tiny_llama, plain)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(plain)
    tok.chat_template = None
    tok.save_pretrained(plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    task = get_task("lm")
    model, tok = task.load_base(_recipe(plain, tmp_path))
    assert tok.chat_template is None and model.config.model_type == "llama"
    with pytest.raises(ValueError, match=r"model\.head is for classification"):
        task.load_base(_recipe(plain, tmp_path, model={"head": {"type": "linear"}}))


def test_default_loss_is_next_token_cross_entropy_on_real_tokens(tiny_llama, tmp_path):
    recipe = _recipe(tiny_llama, tmp_path)
    task = get_task("lm")
    model, tok = task.load_base(recipe)
    feats = task.encode(lm_texts(6), tok, recipe)
    batch = task.collate(feats[-2:], tok)  # the last block is shorter: padding in the batch
    task.use_loss(None, feats)
    with torch.no_grad():
        got = task.loss(model, batch).item()
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    target = batch["labels"][:, 1:]
    want = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), target, ignore_index=IGNORE)
    assert got == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"this task needs one of \['answer_only'\]"):
        task.use_loss(validate_recipe({**lm_recipe(tiny_llama, tmp_path, tmp_path),
                                       "train": {"loss": "bce"}}).train.loss, feats)


@pytest.mark.parametrize("adapter", [False, True])
def test_fit_lowers_perplexity_and_evaluates_blocks(tiny_llama, tmp_path, adapter):
    recipe = _recipe(tiny_llama, tmp_path, adapter, max_steps=24, eval_every=12)
    task = get_task("lm")
    model, tok = task.load_base(recipe)
    model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    rows = lm_texts(96)
    train, val = task.encode(rows[:80], tok, recipe), task.encode(rows[80:], tok, recipe)
    task.use_loss(recipe.train.loss, train)
    before = task.validate(model, eval_batches(val, task, tok, 16))
    result = run_fit(recipe, task, model, tok, train, val, tmp_path)
    after = result.final_validation
    assert set(after) == {"loss", "perplexity"} and result.metric == "loss"
    assert after["perplexity"] == pytest.approx(math.exp(after["loss"]), rel=1e-5)
    assert after["perplexity"] < 0.5 * before["perplexity"]

    ev, preds = task.evaluate(model, tok, rows[80:], recipe)
    assert preds.kind == "tokens" and ev["blocks"] == len(preds) == len(val)
    assert ev["scored_tokens"] == sum(len(f["input_ids"]) - 1 for f in val)
    assert ev["perplexity"]["low"] <= ev["perplexity"]["value"] <= ev["perplexity"]["high"]
    assert ev["perplexity"]["value"] == pytest.approx(value("perplexity", preds))
    out = task.prediction_rows(rows[80:], preds)
    assert [o["block"] for o in out] == list(range(len(val)))
    assert out[0]["rows"][0] == 0 and out[0]["text"] == rows[80]["text"]
    assert sum(o["tokens"] for o in out) == ev["scored_tokens"]
