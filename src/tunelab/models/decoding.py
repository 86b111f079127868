"""Batched, seeded text generation from already-rendered prompt token ids.

Prompts are sorted by length into batches, left-padded by hand (so ``tokenizer.padding_side`` does
not matter) with an attention mask and mask-derived position ids, generated with the KV cache, and
returned in the caller's order. Each batch samples under its own seed, derived from (seed, batch
index), inside a forked RNG: the same seed gives the same samples whatever ran before, and the
global RNG is left as it was. HF ``generate`` samples with ``torch.multinomial`` on the global
generator (it takes no ``torch.Generator``), hence ``torch.manual_seed`` per batch.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from transformers import GenerationConfig

from tunelab.config.decoding import DecodingConfig
from tunelab.models.scoring import autocast_for

CHAT_END = "<|im_end|>"  # the ChatML end-of-turn token: a chat model stops its answer with it


@dataclass
class Sample:
    """One generated continuation.

    ``token_ids`` are the tokens the model generated, up to and including the end token or the
    token that completed a stop string (padding after it dropped); ``text`` is their decoding
    without special tokens, cut before the first stop string.
    """

    text: str
    token_ids: list[int]
    n_tokens: int
    finish_reason: Literal["stop", "length"]


def eos_ids(tokenizer) -> list[int]:
    """The tokenizer's eos id plus the chat template's end token ``<|im_end|>`` when it has one."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if CHAT_END in tokenizer.get_vocab():
        ids.append(tokenizer.convert_tokens_to_ids(CHAT_END))
    return list(dict.fromkeys(int(i) for i in ids))


def pad_id(tokenizer) -> int:
    """The pad id: the tokenizer's, else its first end id."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    ends = eos_ids(tokenizer)
    if not ends:
        raise ValueError("the tokenizer has neither a pad nor an eos token; generation needs one")
    return ends[0]


def generation_config(cfg: DecodingConfig, tokenizer, *, num_samples: int | None = None) -> GenerationConfig:
    """The HF generation config for ``cfg``.

    ``temperature: 0`` is greedy: ``do_sample=False`` and no sampling key set (no warning), one
    sequence per prompt (greedy samples would all be the same; :func:`generate` copies it). When
    sampling, unset keys are given their neutral values explicitly: HF otherwise fills them from the
    model's ``generation_config`` and its global defaults, which include ``top_k=50``.
    """
    ends = eos_ids(tokenizer)
    common: dict[str, Any] = {
        "max_new_tokens": cfg.max_new_tokens,
        "use_cache": True,
        "pad_token_id": pad_id(tokenizer),
        "eos_token_id": ends if len(ends) > 1 else (ends[0] if ends else None),
        "repetition_penalty": cfg.repetition_penalty if cfg.repetition_penalty is not None else 1.0,
        "no_repeat_ngram_size": cfg.no_repeat_ngram_size or 0,
        "stop_strings": list(cfg.stop) or None,
    }
    if cfg.temperature == 0:
        return GenerationConfig(do_sample=False, num_beams=1, num_return_sequences=1, **common)
    return GenerationConfig(
        do_sample=True,
        num_beams=1,
        temperature=cfg.temperature,
        top_k=cfg.top_k or 0,  # 0 disables top-k
        top_p=cfg.top_p if cfg.top_p is not None else 1.0,
        min_p=cfg.min_p or None,
        typical_p=cfg.typical_p if cfg.typical_p is not None else 1.0,
        num_return_sequences=num_samples or cfg.num_samples,
        **common,
    )


def batch_seed(seed: int, batch: int) -> int:
    """A well-mixed 63-bit seed for batch ``batch`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([seed & (2**64 - 1), batch]).generate_state(1, np.uint64)[0] >> 1)


def _check_context(
    model, prompts: Sequence[Sequence[int]], max_new_tokens: int, key: str = "generate.decoding"
) -> None:
    if not prompts:
        return
    if any(len(p) == 0 for p in prompts):
        raise ValueError("an empty prompt cannot be continued: every prompt needs at least one token")
    n_ctx = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    longest = max(len(p) for p in prompts)
    if n_ctx is not None and longest + max_new_tokens > n_ctx:
        raise ValueError(
            f"{key}.max_new_tokens={max_new_tokens} plus the longest prompt ({longest} tokens) "
            f"exceeds the model's context of {n_ctx} tokens (max_position_embeddings); at most "
            f"{max(n_ctx - longest, 0)} new tokens fit"
        )


def _left_pad(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, position_ids), left-padded to the longest row."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for j, r in enumerate(rows):
        ids[j, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
        mask[j, width - len(r) :] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _stop_prefix(tokenizer, new: list[int], stops: Sequence[str]) -> int | None:
    """The length of the shortest prefix of ``new`` whose text holds a stop string (``None``: none does).

    Containment only grows with the prefix, so a binary search finds it in O(log n) decodes.
    """

    def holds(k: int) -> bool:
        text = tokenizer.decode(new[:k], skip_special_tokens=True)
        return any(s in text for s in stops)

    if not stops or not holds(len(new)):
        return None
    return 1 + bisect.bisect_left(range(1, len(new) + 1), True, key=holds)


def _sample(tokenizer, new: list[int], ends: set[int], pad: int, stops: Sequence[str], limit: int) -> Sample:
    """A :class:`Sample` from one row of new tokens (trailing padding included).

    Rows that finished early are filled with ``pad``; when pad is an end token too (common) that
    filler looks like a generated end, so a row stopped by a stop string is cut right after the
    token completing it.
    """
    if pad not in ends:
        while new and new[-1] == pad:
            new.pop()
    end = next((k + 1 for k, t in enumerate(new) if t in ends), len(new))
    new = new[:end]
    at_stop = _stop_prefix(tokenizer, new, stops)
    if at_stop is not None:
        new = new[:at_stop]
    text = tokenizer.decode(new, skip_special_tokens=True)
    hits = [text.find(s) for s in stops if s in text]
    if hits:
        text = text[: min(hits)]
    # ended early: an end token, a stop string or (straddling the prompt) another criterion stopped it
    stopped = bool(new and new[-1] in ends) or at_stop is not None or len(new) < limit
    return Sample(text=text, token_ids=new, n_tokens=len(new), finish_reason="stop" if stopped else "length")


def generate(
    model,
    tokenizer,
    prompts: list[list[int]],
    cfg: DecodingConfig,
    *,
    batch_size: int = 8,
    seed: int,
    precision: str = "fp32",
    num_samples: int | None = None,
    key: str = "generate.decoding",
    hooks: Callable[[list[int], int], dict[str, Any]] | None = None,
) -> tuple[list[list[Sample]], dict[str, Any]]:
    """Samples for each prompt (in the given order) and throughput stats.

    Returns ``(samples, stats)``: ``samples[i]`` holds ``num_samples`` (default ``cfg.num_samples``)
    :class:`Sample` for ``prompts[i]``; ``stats`` is ``{"new_tokens", "seconds", "tokens_per_s",
    "batches"}``. ``key`` names the recipe section in errors. Greedy decoding (``temperature: 0``)
    is batch-independent in fp32: a prompt gets the same tokens alone or among others.

    ``hooks(indices, rows_per_prompt)``, when given, returns extra ``model.generate`` arguments for
    the batch of ``prompts[indices]`` (its rows in that order): a streamer, stopping criteria.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = num_samples or cfg.num_samples
    _check_context(model, prompts, cfg.max_new_tokens, key)
    gc = generation_config(cfg, tokenizer, num_samples=n)
    if not gc.do_sample:
        # Greedy output must not depend on which prompts share a batch: in bf16 the padded batch's
        # rounding flips a token on about a fifth of prompts (benchmarks/generate_throughput.py), in
        # fp32 never. Batching gives most of the speed (5.3x vs 3.9x at batch 8 on a bf16 CPU).
        precision = "fp32"
    per_row = gc.num_return_sequences or 1
    pad, ends, stops = pad_id(tokenizer), set(eos_ids(tokenizer)), list(cfg.stop)
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[Sample]] = [[] for _ in prompts]
    new_tokens, seconds, batches = 0, 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for b, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start : start + batch_size]
            ids, mask, pos = (t.to(device) for t in _left_pad([prompts[i] for i in idx], pad))
            began = time.perf_counter()
            with (
                torch.random.fork_rng(
                    devices=[device.index or 0] if device.type == "cuda" else [], device_type=device.type
                ),
                torch.inference_mode(),
                autocast_for(model, precision),
            ):
                torch.manual_seed(batch_seed(seed, b))
                seqs = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos,
                    generation_config=gc,
                    tokenizer=tokenizer if stops else None,
                    **(hooks(idx, per_row) if hooks is not None else {}),
                )
            seconds += time.perf_counter() - began
            batches += 1
            rows = seqs[:, ids.shape[1] :].cpu().tolist()
            for j, i in enumerate(idx):
                got = [
                    _sample(tokenizer, rows[j * per_row + k], ends, pad, stops, cfg.max_new_tokens)
                    for k in range(per_row)
                ]
                new_tokens += sum(s.n_tokens for s in got)
                # greedy: one sequence, copied into n identical samples
                out[i] = (
                    got
                    if per_row == n
                    else [replace(got[0], token_ids=list(got[0].token_ids)) for _ in range(n)]
                )
    finally:
        model.train(was_training)
    stats = {
        "new_tokens": int(new_tokens),
        "seconds": float(seconds),
        "tokens_per_s": float(new_tokens / seconds) if seconds > 0 else 0.0,
        "batches": batches,
    }
    return out, stats
