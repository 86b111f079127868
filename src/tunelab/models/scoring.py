"""Log-probabilities of continuations under a causal LM, in left-padded batches.

Rows are left-padded so each row's continuation ends at the last position; only the logits of the
last ``max(len(continuation)) + 1`` positions are computed (``logits_to_keep``), since a full
vocabulary times every prompt position dominates memory. Position ids come from the mask, so
padding shifts nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch


def autocast_for(model, precision: str):
    """bf16 autocast on the model's device when ``precision`` is bf16; otherwise a no-op."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16)


def token_logprobs(
    model,
    pad_id: int,
    prompts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    *,
    batch_size: int = 8,
    precision: str = "fp32",
) -> list[np.ndarray]:
    """Per row, the log-probability of each continuation token after its prompt.

    An empty continuation gives an empty array. A row with an empty prompt has no position its
    first token is predicted from: its values are NaN (one per continuation token, so every row
    keeps its length) and it is not run, so it cannot read a neighbour's padding in a batch.
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    device = next(model.parameters()).device
    out: list[np.ndarray] = [np.zeros(0)] * len(prompts)
    for i, (p, c) in enumerate(zip(prompts, continuations, strict=True)):
        if len(c) and not len(p):
            out[i] = np.full(len(c), np.nan)
    scored = [i for i in range(len(prompts)) if len(prompts[i]) and len(continuations[i])]
    order = sorted(scored, key=lambda i: len(prompts[i]) + len(continuations[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if not idx:
            continue
        rows = [list(prompts[i]) + list(continuations[i]) for i in idx]
        width = max(len(r) for r in rows)
        keep = max(len(continuations[i]) for i in idx)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, r in enumerate(rows):
            ids[j, width - len(r) :] = torch.tensor(r)
            mask[j, width - len(r) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode(), autocast_for(model, precision):
            logits = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=keep + 1,
                use_cache=False,
            ).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predicts the last `keep` tokens
        got = logp.gather(-1, ids[:, -keep:].unsqueeze(-1)).squeeze(-1).cpu().numpy()
        for j, i in enumerate(idx):
            n = len(continuations[i])
            out[i] = got[j, keep - n :]
    return out
