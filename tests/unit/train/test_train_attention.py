"""train.attention: the explicit math against transformers' sdpa function, the dispatch by length,
and the switch on fits (fp32, the loss curve within CURVE_RTOL)."""

from __future__ import annotations

import pytest
import torch
from tests.unit.train.fit_helpers import Record
from tests.unit.train.speed_helpers import assert_same_curve, cls_fit, losses, sft_fit
from transformers.integrations import sdpa_attention

from tunelab.tasks.chunked_loss import transformers_model
from tunelab.train.attention import MAX_MATH_KEYS, attention, use_train_attention
from tunelab.train.callbacks import Plan


class _Module(torch.nn.Module):
    def __init__(self, heads: int, kv_heads: int, causal: bool) -> None:
        super().__init__()
        self.num_key_value_groups = heads // kv_heads
        self.is_causal = causal


def _qkv(batch=3, heads=4, kv_heads=2, q_len=9, k_len=9, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, q_len, dim, generator=g, requires_grad=True)
    k = torch.randn(batch, kv_heads, k_len, dim, generator=g, requires_grad=True)
    v = torch.randn(batch, kv_heads, k_len, dim, generator=g, requires_grad=True)
    return q, k, v


def _padding_mask(lengths: list[int], length: int, causal: bool, left: bool = False) -> torch.Tensor:
    pos = torch.arange(length)
    if left:
        valid = torch.stack([pos >= length - n for n in lengths])
    else:
        valid = torch.stack([pos < n for n in lengths])
    mask = valid[:, None, None, :].expand(-1, 1, length, -1)
    return mask & torch.ones(length, length, dtype=torch.bool).tril() if causal else mask


@pytest.mark.parametrize(
    "case", ["causal", "causal+padding", "bidirectional+padding", "gqa-free", "scaled"],
)
def test_math_equals_sdpa_forward_and_backward(case):
    kv_heads = 4 if case == "gqa-free" else 2
    module = _Module(4, kv_heads, causal=case.startswith("causal"))
    mask = None
    if case == "causal+padding":
        mask = _padding_mask([9, 5, 7], 9, causal=True)
    elif case == "bidirectional+padding":
        mask = _padding_mask([9, 4, 6], 9, causal=False)
    scaling = 0.3 if case == "scaled" else None
    outs, grads = [], []
    for fn in (lambda *a, **k: attention(*a, max_math_keys=None, fast=False, **k),
               sdpa_attention.sdpa_attention_forward):
        q, k, v = _qkv(kv_heads=kv_heads)
        out, weights = fn(module, q, k, v, mask, scaling=scaling)
        assert weights is None and out.shape == (3, 9, 4, 8)
        out.pow(2).sum().backward()
        outs.append(out)
        grads.append((q.grad, k.grad, v.grad))
    rows = torch.ones(3, 9, dtype=torch.bool) if mask is None else mask[:, 0].any(-1)  # queries with keys
    torch.testing.assert_close(outs[0][rows], outs[1][rows], atol=1e-5, rtol=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _eager_bf16(module, q, k, v, mask):
    """transformers' eager recipe: scores scaled, masked, softmax in fp32 and cast back."""
    k, v = sdpa_attention.repeat_kv(k, 2), sdpa_attention.repeat_kv(v, 2)
    scores = torch.matmul(q, k.transpose(2, 3)) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(probs, v).transpose(1, 2).contiguous(), None


@pytest.mark.parametrize("mask_kind", ["bool", "additive fp32"])
def test_bf16_math_is_as_close_to_fp32_as_the_eager_recipe(mask_kind):
    """In bf16 the scores are scaled and masked in one pass and the softmax runs in bf16 (fp32 inside):
    no further from the fp32 result than the fp32 softmax cast back, with either kind of mask."""
    module = _Module(4, 2, causal=False)
    mask = _padding_mask([40, 14, 26], 40, causal=False)
    given = mask if mask_kind == "bool" else torch.zeros(mask.shape).masked_fill(~mask, torch.finfo().min)

    def run(fn, dtype, mask):
        q, k, v = (t.detach().to(dtype).requires_grad_() for t in _qkv(q_len=40, k_len=40, dim=32))
        out, _ = fn(module, q, k, v, mask)
        out.float().pow(2).sum().backward()
        return [out.detach().float(), *(t.grad.float() for t in (q, k, v))]

    ours = run(lambda *a: attention(*a, max_math_keys=None, fast=False), torch.bfloat16, given)
    exact = run(sdpa_attention.sdpa_attention_forward, torch.float32, mask)
    eager = run(_eager_bf16, torch.bfloat16, mask)
    for mine, theirs, ref in zip(ours, eager, exact, strict=True):
        assert torch.isfinite(mine).all()
        assert (mine - ref).abs().max() <= 1.25 * (theirs - ref).abs().max() + 1e-3
        assert (mine - ref).abs().mean() <= 1.1 * (theirs - ref).abs().mean() + 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("additive", [False, True], ids=["bool mask", "fp32 additive mask"])
def test_a_query_with_no_key_left_stays_finite(dtype, additive):
    module = _Module(4, 2, causal=True)
    mask = _padding_mask([9, 3, 6], 9, causal=True, left=True)  # left padding: rows with nothing to see
    if additive:  # fp32's lowest value is -inf in bf16
        mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo().min)
    q, k, v = (t.detach().to(dtype).requires_grad_() for t in _qkv())
    out, _ = attention(module, q, k, v, mask, max_math_keys=None, fast=False)
    out.float().sum().backward()
    assert torch.isfinite(out).all() and all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_long_keys_go_to_sdpa_and_short_ones_do_not(monkeypatch):
    calls = []
    real = sdpa_attention.sdpa_attention_forward

    def spy(*args, **kwargs):
        calls.append(args[2].shape[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", spy)
    module = _Module(4, 2, causal=True)
    for length in (MAX_MATH_KEYS, MAX_MATH_KEYS + 1):
        q, k, v = _qkv(q_len=length, k_len=length)
        attention(module, q, k, v, None, max_math_keys=MAX_MATH_KEYS, fast=False)
    assert calls == [MAX_MATH_KEYS + 1]
    q, k, v = _qkv(q_len=300, k_len=300)
    attention(module, q, k, v, None, dropout=0.1, max_math_keys=0, fast=True)
    assert calls == [MAX_MATH_KEYS + 1], "dropout with fast dropout: the math at any length"


def test_eager_models_are_left_alone(tiny_llama):
    from transformers import AutoModelForCausalLM

    eager = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="eager")
    assert use_train_attention(eager, None, False) is None
    sdpa = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="sdpa")
    undo = use_train_attention(sdpa, 64, True)
    assert sdpa.config._attn_implementation == "tunelab_train_64_fast"
    undo()
    assert sdpa.config._attn_implementation == "sdpa"


def test_math_attention_keeps_the_sft_loss_curve_and_fit_restores_sdpa(
    tiny_llama, tmp_path, fresh_accelerator_state
):
    seen = Record(lambda ctx: transformers_model(ctx.model).config._attn_implementation)
    on, model = sft_fit(
        tiny_llama, tmp_path / "on", plan=Plan(callbacks=[seen]), ragged=True, attention="math"
    )
    off, _ = sft_fit(tiny_llama, tmp_path / "off", ragged=True, attention="sdpa", fast_dropout=False)
    assert on.speed["attention"] == "math" and off.speed["attention"] == "sdpa"
    assert set(seen.seen) == {"tunelab_train_all_fast"}, "the math ran in the training steps"
    assert transformers_model(model).config._attn_implementation == "sdpa", "undone after fit"
    assert_same_curve(losses(on), losses(off))


def test_math_attention_keeps_the_classification_loss_curve(tiny_bert, tmp_path, fresh_accelerator_state):
    on, _ = cls_fit(tiny_bert, tmp_path / "on", attention="math")
    off, _ = cls_fit(tiny_bert, tmp_path / "off", attention="sdpa", fast_dropout=False)
    assert_same_curve(losses(on), losses(off), trains=False)
