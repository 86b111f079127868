"""Tunelab heads: pooling, head dropout, and complete reloads (with an adapter, and as a full model)."""

from __future__ import annotations

import json

import pytest
import torch
from tests.unit.train.fit_helpers import LABELS, cls_recipe

from tunelab.models.adapters import apply_adapter
from tunelab.models.heads import POOLINGS, HeadedModel, is_headed
from tunelab.tasks import get_task

MLP_MEAN = {"head": {"type": "mlp", "pooling": "mean", "dropout": 0.2, "hidden_size": 16}}


def test_poolings_on_hand_made_states():
    states = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(POOLINGS["cls"](states, mask), states[:, 0])
    torch.testing.assert_close(POOLINGS["mean"](states, mask)[0], states[0, :2].mean(0))
    torch.testing.assert_close(POOLINGS["last"](states, mask), torch.stack([states[0, 1], states[1, 2]]))


def _texts_and_batch(tok):
    texts = ["great film", "the movie was a really dull and boring story"]
    return texts, tok(texts, padding=True, return_tensors="pt")


def test_mean_pooling_ignores_padding(tiny_bert, tmp_path):
    task = get_task("classification")
    model, tok = task.load_base(cls_recipe(tiny_bert, tmp_path, MLP_MEAN), LABELS)
    assert isinstance(model, HeadedModel) and model.classifier.net[0].p == 0.2
    model.eval()
    texts, batch = _texts_and_batch(tok)
    with torch.no_grad():
        together = model(**batch).logits
        alone = model(**tok(texts[:1], return_tensors="pt")).logits
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]  # really padded
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-4)


def _perturb(model) -> None:
    """Stand-in for training: move every trainable weight."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)


@pytest.mark.parametrize("head", [MLP_MEAN, {"head": {"type": "linear", "pooling": "cls"}}])
def test_adapter_reload_includes_the_head(tiny_bert, tmp_path, head):
    task = get_task("classification")
    recipe = cls_recipe(tiny_bert, tmp_path, {**head, "adapter": {"method": "lora", "r": 4}})
    model, tok = task.load_base(recipe, LABELS)
    model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("classifier.modules_to_save" in n for n in names)
    # the head is trained whole, not adapted
    assert not any("classifier" in n and "lora_" in n for n in names)
    _perturb(model)
    model.eval()
    _, batch = _texts_and_batch(tok)
    with torch.no_grad():
        want = model(**batch).logits
    model.save_pretrained(tmp_path / "out")
    reloaded, _ = task.load_tuned(tmp_path / "out", recipe, LABELS)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, want)


def test_full_model_with_a_tunelab_head_reloads_with_tunelab(tiny_bert, tmp_path):
    task = get_task("classification")
    recipe = cls_recipe(tiny_bert, tmp_path, MLP_MEAN)
    model, tok = task.load_base(recipe, LABELS)
    _perturb(model)
    model.eval()
    _, batch = _texts_and_batch(tok)
    with torch.no_grad():
        want = model(**batch).logits
    out = tmp_path / "full"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    assert is_headed(out)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertModel"]
    reloaded, _ = task.load_tuned(out, recipe, LABELS)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, want)


def test_head_dropout_on_the_models_own_head(tiny_bert, tmp_path):
    task = get_task("classification")
    model, _ = task.load_base(cls_recipe(tiny_bert, tmp_path, {"head": {"dropout": 0.3}}), LABELS)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.dropout.p == 0.3 and model.config.classifier_dropout == 0.3
