"""Batched greedy generation of chat answers, used to score generated text."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def generate_answers(
    model, tokenizer, conversations: list[list[dict[str, str]]], max_new_tokens: int, batch_size: int = 8
) -> list[str]:
    """Greedy answers to each conversation (the chat template adds the assistant prompt)."""
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only generation needs the prompt flush right
    out: list[str] = []
    try:
        for start in tqdm(range(0, len(conversations), batch_size), desc="generate", leave=False):
            chunk = conversations[start : start + batch_size]
            texts = [
                tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chunk
            ]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                model.device
            )
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            out.extend(
                tokenizer.decode(g[enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
                for g in gen
            )
    finally:
        tokenizer.padding_side = side
    return out
