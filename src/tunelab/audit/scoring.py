"""Scoring original and swapped texts in length-sorted batches: class probabilities for
classifiers, a continuation's log-likelihood per token for causal LMs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from tunelab.tasks.windows import LongText, pooled_logits

CHUNK = 1024  # texts per progress step (each scored in length-sorted batches)


@torch.inference_mode()
def class_probs(
    model, tokenizer, texts: Sequence[str], settings: LongText | int, batch_size: int = 32
) -> np.ndarray:
    """(n, classes) fp32 softmax probabilities, computed as the evaluate stage does (padded batches; a
    text longer than max_length read as ``settings`` say, windows pooled before the softmax). A plain
    ``int`` is a max_length to truncate to."""
    if isinstance(settings, int):
        settings = LongText(settings)
    model.eval()
    chunks = [texts[start : start + CHUNK] for start in range(0, len(texts), CHUNK)]
    out = [
        torch.softmax(pooled_logits(model, tokenizer, part, settings, batch_size), dim=-1).numpy()
        for part in tqdm(chunks, desc="audit", leave=False, disable=len(chunks) <= 1)
    ]
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))


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
