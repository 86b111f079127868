"""Scoring original and swapped texts in length-sorted batches: class probabilities for
classifiers, a continuation's log-likelihood per token for causal LMs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm


@torch.inference_mode()
def class_probs(model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int = 32) -> np.ndarray:
    """(n, classes) fp32 softmax probabilities, computed as the evaluate stage does (padded batches)."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in tqdm(
        range(0, len(order), batch_size), desc="audit", leave=False, disable=len(order) <= batch_size
    ):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length)
        batch = tokenizer.pad({"input_ids": enc["input_ids"]}, padding=True, return_tensors="pt")
        batch = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
        probs = torch.softmax(model(**batch).logits.float(), dim=-1).cpu().numpy()
        if out is None:
            out = np.zeros((len(texts), probs.shape[1]), dtype=np.float64)
        out[idx] = probs
    return out if out is not None else np.zeros((0, 0))


def continuation_logprob(
    model, tokenizer, prompts: Sequence[str], continuations: Sequence[str], batch_size: int = 16
) -> np.ndarray:
    """Mean log-probability per token of each continuation after its prompt (chat template if any)."""
    from tunelab.models.scoring import token_logprobs

    prompt_ids, cont_ids = [], []
    for p, c in zip(prompts, continuations, strict=True):
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
            )
            prompt_ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        else:
            prompt_ids.append(tokenizer(p)["input_ids"])
        cont_ids.append(tokenizer(c, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = token_logprobs(model, int(pad), prompt_ids, cont_ids, batch_size=batch_size)
    return np.array([float(r.mean()) if len(r) else float("nan") for r in rows])
