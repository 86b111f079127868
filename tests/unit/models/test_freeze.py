"""Layer groups on every model shape we build; freezing keeps weights bit-identical; dropout overrides."""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.fit_helpers import LABELS, cls_recipe, cls_setup, run_fit, sft_setup

from tunelab.config.model import DropoutConfig, FreezeConfig
from tunelab.models.adapters import apply_adapter
from tunelab.models.freeze import freeze, layer_groups
from tunelab.tasks import get_task
from tunelab.tasks.loading import apply_dropout


def test_layer_groups_on_hf_head_tunelab_head_and_peft_llama(tiny_bert, tiny_llama, tmp_path):
    task = get_task("classification")
    bert, _ = task.load_base(cls_recipe(tiny_bert, tmp_path), LABELS)
    g = layer_groups(bert)
    assert len(g.layers) == 2
    assert {n.split(".")[1] for n, _ in g.embeddings} == {"embeddings"}
    assert {n.split(".")[0] for n, _ in g.top} == {"bert", "classifier"}  # pooler, classifier

    headed, _ = task.load_base(cls_recipe(tiny_bert, tmp_path, {"head": {"type": "linear"}}), LABELS)
    above = [n for n, _ in headed.named_parameters() if n.startswith(("backbone.pooler", "classifier"))]
    assert [n for n, _ in layer_groups(headed).top] == above and "classifier.net.1.weight" in above

    recipe, sft, llama, *_ = sft_setup(tiny_llama, tmp_path, n=4)
    peft = apply_adapter(llama, recipe.model.adapter, sft.peft_task_type)
    g = layer_groups(peft)
    assert len(g.layers) == 2 and any("lora_A" in n for n, _ in g.layers[0])
    assert [n.rsplit(".", 2)[-2] for n, _ in g.embeddings] == ["embed_tokens"]
    assert [n.rsplit(".", 2)[-2] for n, _ in g.top] == ["norm"]  # the LM head is tied to the embeddings


def test_frozen_embeddings_and_first_layer_stay_bit_identical(tiny_bert, tmp_path):
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=32, model={"freeze": {"embeddings": True, "layers": 1}}, max_steps=4,
        eval_every=100, learning_rate=1e-2,
    )
    assert freeze(model, recipe.model.freeze) > 0
    g = layer_groups(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    run_fit(recipe, task, model, tok, train, val, tmp_path)
    for n, p in g.embeddings + g.layers[0]:
        assert not p.requires_grad and torch.equal(p, before[n]), n
    assert all(not torch.equal(p, before[n]) for n, p in g.layers[1] if n.endswith("weight"))


def test_freezing_more_layers_than_exist_is_an_error(tiny_bert, tmp_path):
    model, _ = get_task("classification").load_base(cls_recipe(tiny_bert, tmp_path), LABELS)
    with pytest.raises(ValueError, match=r"model\.freeze\.layers is 3 but the model has 2 layers"):
        freeze(model, FreezeConfig(layers=3))


def test_dropout_overrides_map_onto_each_family(tiny_bert, tiny_llama, tmp_path):
    task = get_task("classification")
    recipe = cls_recipe(tiny_bert, tmp_path, {"dropout": {"hidden": 0.25, "attention": 0.15}})
    bert, _ = task.load_base(recipe, LABELS)
    assert bert.config.hidden_dropout_prob == 0.25 and bert.config.attention_probs_dropout_prob == 0.15
    assert bert.bert.embeddings.dropout.p == 0.25  # the modules were built with it

    from transformers import AutoConfig

    llama = AutoConfig.from_pretrained(tiny_llama)
    assert apply_dropout(llama, DropoutConfig(attention=0.1)) == ["attention_dropout"]
    assert llama.attention_dropout == 0.1
    with pytest.raises(ValueError, match=r"model\.dropout\.hidden: a llama config has none of the fields"):
        apply_dropout(llama, DropoutConfig(hidden=0.1))
