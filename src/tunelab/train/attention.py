"""The attention kernel of training steps on CPU (``train.attention``).

transformers' ``sdpa`` attention leaves the kernel to ``F.scaled_dot_product_attention``, which picks
its flash kernel on CPU whenever there is no dropout. That kernel is slow on the short rows of
fine-tuning data: forward and backward, bf16, causal, 9 heads of 64 (SmolLM2) on a 2-core EPYC, the
explicit matmul-softmax-matmul here took 2.2 ms against flash's 6.2 at batch 8 x 64 keys, 6.6 against
15.5 at 128; at 192 flash was ahead (24 against 32 ms), and 2x ahead at 512
(``benchmarks/cpu_kernels.py`` prints the table).
With attention dropout (BERT: 0.1) torch computes the same matmul-softmax-matmul anyway, dropout drawn
with ``bernoulli_``; here it draws with :func:`~tunelab.train.fast_dropout.fast_dropout` when that is on.

So for sdpa models the training steps use :func:`attention`, registered with transformers'
``AttentionInterface`` (masks built as for sdpa): the explicit math where the keys are at most
``max_math_keys`` long (or there is dropout to draw), ``sdpa_attention_forward`` unchanged elsewhere.
Written here because the choice by length is not one torch or transformers makes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from tunelab.tasks.chunked_loss import transformers_model
from tunelab.train.fast_dropout import fast_dropout

MAX_MATH_KEYS = 128  # auto on CPU: the explicit math up to this many keys (crossover 128 to 192)


def attention(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
    is_causal: bool | None = None, *, max_math_keys: int | None, fast: bool, **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: q, k, v ``(batch, heads, length, dim)``; returns
    ``(batch, length, heads, dim)`` and no weights."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    short = max_math_keys is None or key.shape[2] <= max_math_keys
    exotic = any(kwargs.get(k) is not None for k in ("position_bias", "s_aux", "softcap"))
    if query.device.type != "cpu" or exotic or not (short or (dropout > 0.0 and fast)):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal,
            **kwargs,
        )
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scale = scaling if scaling is not None else 1.0 / math.sqrt(query.shape[-1])
    scores = torch.matmul(query, key.transpose(2, 3))
    # scaled and masked in one pass that also widens to fp32 for the softmax (torch's CPU softmax is
    # 3x slower on bf16 than on fp32); a masked_fill with a bool mask costs on CPU about as much as
    # the matmul that made the scores
    bias = _additive_mask(module, query, key, attention_mask, is_causal, torch.float32)
    scores = scores * scale if bias is None else torch.add(bias, scores, alpha=scale)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    if dropout > 0.0:
        probs = fast_dropout(probs, dropout) if fast else nn.functional.dropout(probs, dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _additive_mask(
    module: nn.Module, query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None,
    is_causal: bool | None, dtype: torch.dtype,
) -> torch.Tensor | None:
    """The mask as a bias to add to the scores, in ``dtype``, at its own (broadcast) shape: 0 where
    a key is seen, the dtype's lowest finite value where not, as transformers' eager attention (a row
    with no key left, left padding, gets uniform weights, not the NaN that -inf would spread)."""
    low = torch.finfo(dtype).min
    if mask is not None:
        mask = mask[:, :, :, : key.shape[2]]
        if mask.dtype != torch.bool:  # a wider dtype's lowest value is -inf in ``dtype``: kept finite
            return mask.to(dtype).clamp_min(low)
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, low)
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if query.shape[2] > 1 and causal:
        return torch.full((query.shape[2], key.shape[2]), low, dtype=dtype, device=query.device).triu_(1)
    return None


def use_train_attention(model: nn.Module, max_math_keys: int | None, fast: bool) -> Callable[[], None] | None:
    """Route ``model``'s sdpa attention through :func:`attention`; returns the undo, or None where the
    model is not a transformers model on sdpa (eager and flash-attention models are left alone)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    inner = transformers_model(model)
    config = getattr(inner, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return None
    # one registered name per setting, so two models in one process never share a setting by mistake
    name = f"tunelab_train_{'all' if max_math_keys is None else max_math_keys}{'_fast' if fast else ''}"
    AttentionInterface.register(name, partial(attention, max_math_keys=max_math_keys, fast=fast))
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, sdpa_mask)
    config._attn_implementation = name

    def undo() -> None:
        config._attn_implementation = "sdpa"

    return undo
