"""DoRA adapters train: their weights (magnitudes included) move and the loss falls; the base stays put.

(LoRA training is covered by the SFT pipeline test.)"""

from __future__ import annotations

import torch
from tests.unit.train.fit_helpers import run_fit, sft_setup

from tunelab.models.adapters import apply_adapter


def test_dora_trains(tiny_llama, tmp_path):
    recipe, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=40, max_steps=6, eval_every=6,
                                                batch_size=8, warmup_ratio=0.0)
    cfg = recipe.model.adapter.model_copy(update={"method": "dora"})
    model = apply_adapter(model, cfg, task.peft_task_type)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_magnitude_vector" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable if "lora_A" in n} >= {"q_proj", "down_proj"}  # all-linear
    with torch.no_grad():
        task.use_loss(None, feats)
        start = task.loss(model.eval(), task.collate(feats[:16], tok)).item()
    result = run_fit(recipe, task, model, tok, feats[:32], feats[32:], tmp_path)
    with torch.no_grad():
        end = task.loss(model.eval(), task.collate(feats[:16], tok)).item()
    assert end < start
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) != (n in trainable), n
    assert result.state.global_step == 6
