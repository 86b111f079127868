"""train.fast_dropout: the mask's distribution, the arithmetic around it, and the switch on a fit.

The fit comparison feeds the fast path masks drawn by torch's own ``bernoulli_`` (the generator is
the only thing the switch changes), so the curve must match torch's dropout step for step; the
generator itself is checked statistically.
"""

from __future__ import annotations

import math

import pytest
import torch
from tests.unit.train.fit_helpers import Crash
from tests.unit.train.speed_helpers import assert_same_curve, cls_fit, losses
from torch import nn

from tunelab.train import fast_dropout as fd
from tunelab.train.callbacks import Plan
from tunelab.train.fast_dropout import FastDropout, fast_dropout, keep_mask, use_fast_dropout

DROPOUT = {"dropout": {"hidden": 0.1, "attention": 0.1}}


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_keep_rate_is_one_minus_p_within_five_sigma(p):
    torch.manual_seed(0)
    n = 1_000_003  # not a multiple of 4: the last word is cut
    keep, rounded = keep_mask((n,), p, torch.device("cpu"))
    assert keep.dtype == torch.bool and keep.shape == (n,)
    assert rounded == round(p * 65536) / 65536 and abs(rounded - p) <= 1 / 131072
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(int((~keep).sum()) - n * rounded) < 5 * sigma


def test_mask_lanes_are_independent_and_draws_differ_but_repeat_under_a_seed():
    torch.manual_seed(1)
    a, _ = keep_mask((400_000,), 0.5, torch.device("cpu"))
    b, _ = keep_mask((400_000,), 0.5, torch.device("cpu"))
    x = a.float() - 0.5
    for lag in (1, 2, 3, 4):  # the four lanes of one 64-bit word, and the next word
        corr = float((x[:-lag] * x[lag:]).mean() / x.var())
        assert abs(corr) < 0.01, f"lag {lag}: correlation {corr:.4f}"
    assert (a != b).float().mean() > 0.45, "a second draw is a new mask"
    torch.manual_seed(1)
    again, _ = keep_mask((400_000,), 0.5, torch.device("cpu"))
    assert torch.equal(a, again), "the default generator governs it"


def test_forward_scales_the_kept_and_backward_passes_the_same_mask():
    torch.manual_seed(2)
    x = torch.randn(64, 33, 17, requires_grad=True)
    out = fast_dropout(x, 0.2)
    kept = out != 0
    rounded = round(0.2 * 65536) / 65536
    torch.testing.assert_close(out[kept], x.detach()[kept] / (1 - rounded))
    assert abs(float(kept.float().mean()) - 0.8) < 0.01
    g = torch.randn_like(x)
    out.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, g / (1 - rounded), 0.0))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_one_pass_mask_gives_where_keep_x_times_scale_to_the_bit(dtype):
    x = torch.randn(32, 12, 40, 40).to(dtype).requires_grad_()
    torch.manual_seed(3)
    out = fast_dropout(x, 0.1)
    torch.manual_seed(3)
    keep, rounded = keep_mask(x.shape, 0.1, x.device)
    scale = 1.0 / (1.0 - rounded)
    assert out.dtype == dtype and torch.equal(out, torch.where(keep, x.detach() * scale, 0.0))
    g = torch.randn_like(x)
    out.backward(g)
    assert torch.equal(x.grad, torch.where(keep, g * scale, 0.0))


def test_identity_where_torch_dropout_is_and_p_is_checked():
    x = torch.randn(5, 7)
    assert fast_dropout(x, 0.3, training=False) is x
    assert fast_dropout(x, 0.0) is x
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast_dropout(x, 1.5)


def test_every_plain_dropout_is_swapped_and_the_undo_restores_them():
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32)
    model = get_peft_model(BertModel(cfg), LoraConfig(r=2, lora_dropout=0.1, target_modules=["query"]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = [m for m in model.modules() if type(m) is nn.Dropout]
    assert any("lora_dropout" in n for n, m in model.named_modules() if type(m) is nn.Dropout)
    undo = use_fast_dropout(model)
    assert all(type(m) is FastDropout for m in plain)
    assert not any(type(m) is nn.Dropout for m in model.modules())
    undo()
    assert all(type(m) is nn.Dropout for m in plain)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_fit_with_torchs_masks_on_the_fast_path_keeps_the_loss_curve(
    tiny_bert, tmp_path, fresh_accelerator_state, monkeypatch
):
    """Hidden and attention dropout 0.1, fp32: the fast path (our module swap, our attention math,
    our backward) with bernoulli_ masks against torch's own dropout, 20 steps."""
    def torch_masks(shape, p, device):
        return torch.empty(shape, device=device).bernoulli_(1 - p).bool(), p

    off, _ = cls_fit(tiny_bert, tmp_path / "off", model=DROPOUT, fast_dropout=False, attention="sdpa")
    monkeypatch.setattr(fd, "keep_mask", torch_masks)
    on, _ = cls_fit(tiny_bert, tmp_path / "on", model=DROPOUT, fast_dropout=True, attention="sdpa")
    assert on.speed["fast_dropout"] and not off.speed["fast_dropout"]
    assert_same_curve(losses(on), losses(off), trains=False)


def test_recomputed_layers_draw_the_same_masks(tiny_bert, tmp_path, fresh_accelerator_state):
    """Gradient checkpointing reruns each layer's forward in backward; the restored RNG state must give
    the fast path the masks of the first pass, or the gradients would belong to another network."""
    on, _ = cls_fit(tiny_bert, tmp_path / "on", model=DROPOUT, gradient_checkpointing=True)
    off, _ = cls_fit(tiny_bert, tmp_path / "off", model=DROPOUT)
    assert on.speed["fast_dropout"] and on.speed["gradient_checkpointing"]
    assert_same_curve(losses(on), losses(off), trains=False)


def test_a_crashed_run_with_fast_dropout_resumes_exactly(tiny_bert, tmp_path, fresh_accelerator_state):
    """The masks come from torch's generator, whose state the checkpoint saves: a run killed mid-way
    and resumed ends with the very weights of the run that was not."""
    kw = {"model": DROPOUT, "save_every": 5, "keep_checkpoints": 10}
    straight, a = cls_fit(tiny_bert, tmp_path / "a", **kw)
    with pytest.raises(KeyboardInterrupt):
        cls_fit(tiny_bert, tmp_path / "b", plan=Plan(callbacks=[Crash(12)]), **kw)
    resumed, b = cls_fit(tiny_bert, tmp_path / "b", resume=True, **kw)
    assert straight.speed["fast_dropout"] and resumed.resumed_from == 10
    assert losses(resumed) == losses(straight)
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(x, y), name
