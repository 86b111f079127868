"""Attention maps per layer and head, and attention rollout (Abnar & Zuidema, 2020).

transformers 5 loads models with SDPA attention, which returns no attention weights; the model is
switched to eager attention while the maps are taken, and a model that still returns none is an
error, never ``None`` handed on. As an attribution, ``attention`` is the rollout row of the token
the prediction is read from ([CLS] for an encoder, the last real token for a decoder classifier or
a head that pools ``last``, the last prompt token for a causal LM).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from tunelab.explain.context import Context
from tunelab.explain.registry import Attribution, Method, register
from tunelab.explain.subject import Subject


@torch.no_grad()
def attention_maps(ctx: Context, ids: list[int]) -> np.ndarray:
    """(layers, heads, seq, seq) attention weights of one input (rows: queries, columns: keys)."""
    x = torch.tensor([ids], dtype=torch.long, device=ctx.predictor.device)
    with ctx.eager_attention():
        out = ctx.model(input_ids=x, attention_mask=torch.ones_like(x), output_attentions=True)
    maps = getattr(out, "attentions", None)
    if not maps or any(m is None for m in maps):
        raise RuntimeError(
            f"{type(ctx.model).__name__} returned no attention weights even with eager attention; "
            "remove `attention` from explain.methods for this model"
        )
    return torch.stack([m[0].float() for m in maps]).cpu().numpy()


def padded_maps(ctx: Context, id_lists: list[list[int]]) -> list[np.ndarray]:
    """Attention maps of several inputs in one padded pass, each cut to its real tokens."""
    p = ctx.predictor
    width = max(len(i) for i in id_lists)
    x = torch.full((len(id_lists), width), p.pad_id, dtype=torch.long)
    mask = torch.zeros_like(x)
    for j, ids in enumerate(id_lists):
        x[j, : len(ids)] = torch.tensor(ids)
        mask[j, : len(ids)] = 1
    with torch.no_grad(), ctx.eager_attention():
        out = ctx.model(input_ids=x.to(p.device), attention_mask=mask.to(p.device), output_attentions=True)
    if not out.attentions or any(m is None for m in out.attentions):
        raise RuntimeError(f"{type(ctx.model).__name__} returned no attention weights")
    stacked = torch.stack([m.float() for m in out.attentions], dim=1).cpu().numpy()  # (b, L, H, S, S)
    return [stacked[j, :, :, : len(ids), : len(ids)] for j, ids in enumerate(id_lists)]


def rollout(maps: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """(seq, seq) attention rollout: head-averaged maps with the residual path, multiplied up the layers.

    Each layer's matrix is ``residual * I + (1 - residual) * mean_heads(A)`` with rows renormalised,
    so every row of the product is a distribution over the input tokens (sums to 1).
    """
    seq = maps.shape[-1]
    out = np.eye(seq)
    for layer in maps.astype(np.float64):
        a = residual * np.eye(seq) + (1 - residual) * layer.mean(axis=0)
        a /= a.sum(axis=-1, keepdims=True)
        out = a @ out
    return out


def read_position(ctx: Context, subject: Subject) -> int:
    """The token whose representation the prediction is read from.

    A causal LM reads its answer from the last prompt token. A classifier reads the last real
    (non-pad) token when its head pools ``last`` (a tunelab head) or its backbone is a decoder (a
    transformers ``...ForSequenceClassification`` of a decoder scores the last token that is not
    ``config.pad_token_id``); otherwise [CLS] (for mean pooling the first row is still a fair summary).
    """
    ids = subject.prompt_ids
    if ctx.kind == "causal":
        return subject.n_prompt - 1
    spec = getattr(ctx.model, "head_spec", None)
    if isinstance(spec, dict):  # a tunelab head pools over the attention mask: every token is real here
        return len(ids) - 1 if spec.get("pooling") == "last" else 0
    from tunelab.explain.layers import _is_causal

    if _is_causal(ctx.model):
        config = ctx.model.config
        pad = getattr(
            config.get_text_config() if hasattr(config, "get_text_config") else config, "pad_token_id", None
        )
        real = [i for i, t in enumerate(ids) if t != pad]
        return real[-1] if real else 0  # as transformers does
    return 0


def attention(ctx: Context, subject: Subject) -> Attribution:
    start = time.perf_counter()
    ids = subject.prompt_ids
    maps = attention_maps(ctx, ids)
    rolled = rollout(maps)
    scores = np.zeros(len(subject.ids))
    scores[: len(ids)] = rolled[read_position(ctx, subject)]
    keep = ctx.cfg.attention_max_tokens
    info: dict = {"shape": list(maps.shape)}
    if subject.meta.get("show_attention", True):  # the stage keeps the maps of a few examples only
        info["maps"] = np.round(maps[:, :, :keep, :keep], 3).tolist()
        info["rollout"] = np.round(rolled[:keep, :keep], 4).tolist()
        info["tokens_shown"] = min(keep, len(ids))
    return Attribution("attention", scores, info, time.perf_counter() - start)


register(
    Method("attention", attention, "attention maps per layer/head; rollout from the read-out token as scores")
)
