"""train.pooled_last_layer: the last layer computing the first position alone gives the logits and
gradients of the full model (fp32), on every supported family and attention, and keeps the fit."""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.speed_helpers import assert_same_curve, cls_fit, losses

from tunelab.config.train import TrainConfig
from tunelab.tasks import get_task
from tunelab.train.attention import use_train_attention
from tunelab.train.pooled_layer import pooled_layer_problem, use_pooled_last_layer
from tunelab.train.speed import Speed

THREADS = {"intra_op_threads": 2, "inter_op_threads": 2}
SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48,
         "num_labels": 3, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _model(family: str, attention: str = "sdpa") -> torch.nn.Module:
    import transformers as t

    configs = {
        "bert": (t.BertConfig, t.BertForSequenceClassification, {}),
        "roberta": (t.RobertaConfig, t.RobertaForSequenceClassification, {"pad_token_id": 1}),
        "xlm-roberta": (t.XLMRobertaConfig, t.XLMRobertaForSequenceClassification, {"pad_token_id": 1}),
        "electra": (t.ElectraConfig, t.ElectraForSequenceClassification, {"embedding_size": 16}),
    }
    config_class, model_class, extra = configs[family]
    torch.manual_seed(0)
    config = config_class(vocab_size=90, max_position_embeddings=40, **SIZES, **extra)
    config._attn_implementation = attention
    return model_class(config).float()


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 90, (4, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padded rows: the first position must still ignore the pads
    mask[3, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 1])}


def _logits_and_grads(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    out = model(**_batch())
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), grads


@pytest.mark.parametrize(
    ("family", "attention"),
    [("bert", "sdpa"), ("bert", "eager"), ("bert", "math"), ("roberta", "sdpa"), ("xlm-roberta", "eager"),
     ("electra", "sdpa")],
)
def test_first_position_alone_gives_the_full_logits_and_gradients(family, attention):
    model = _model(family, "sdpa" if attention == "math" else attention).train()
    if attention == "math":
        use_train_attention(model, None, fast=False)
    full_logits, full_grads = _logits_and_grads(model)
    undo = use_pooled_last_layer(model)
    logits, grads = _logits_and_grads(model)
    torch.testing.assert_close(logits, full_logits, rtol=1e-5, atol=1e-6)
    assert grads.keys() == full_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    last = model.base_model.encoder.layer[-1]
    hidden = last(torch.randn(2, 5, 32))
    assert hidden.shape == (2, 1, 32), "the layer computed one position"
    undo()
    assert "forward" not in vars(last) and last(torch.randn(2, 5, 32)).shape == (2, 5, 32)


def test_the_layer_really_skips_the_other_positions():
    """Counts the rows the last feed-forward sees: the test of a switch that could be a no-op."""
    model = _model("bert").train()
    rows = []
    last = model.bert.encoder.layer[-1]
    last.intermediate.dense.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[:2]))
    model(**_batch())
    use_pooled_last_layer(model)
    model(**_batch())
    assert rows == [torch.Size([4, 11]), torch.Size([4, 1])]


def test_other_models_are_refused_with_the_reason():
    import transformers as t

    distil = t.DistilBertForSequenceClassification(
        t.DistilBertConfig(vocab_size=90, dim=32, n_layers=1, n_heads=4, hidden_dim=48)
    )
    assert "DistilBertForSequenceClassification is not a first-token" in pooled_layer_problem(distil)
    bert_flash = _model("bert")
    bert_flash.config._attn_implementation = "flash_attention_2"
    assert "flash_attention_2" in pooled_layer_problem(bert_flash)
    with pytest.raises(ValueError, match=r"train\.pooled_last_layer: DistilBert"):
        use_pooled_last_layer(distil)
    cfg = TrainConfig(pooled_last_layer=True)
    task, cpu = get_task("classification"), torch.device("cpu")
    with pytest.raises(ValueError, match="pooled_last_layer: true, but"):
        Speed.resolve(cfg, task, distil, cpu, "fp32", [5], THREADS)
    auto = Speed.resolve(TrainConfig(), task, distil, cpu, "fp32", [5], THREADS)
    assert auto.pooled_last_layer is False


def test_the_fit_keeps_its_loss_curve_and_is_undone(tiny_bert, tmp_path, fresh_accelerator_state):
    on, model = cls_fit(tiny_bert, tmp_path / "on", pooled_last_layer="auto")
    off, _ = cls_fit(tiny_bert, tmp_path / "off", pooled_last_layer=False)
    assert on.speed["pooled_last_layer"] is True and off.speed["pooled_last_layer"] is False
    assert "forward" not in vars(model.bert.encoder.layer[-1]), "undone after fit"
    assert_same_curve(losses(on), losses(off), rtol=1e-4, trains=False)
