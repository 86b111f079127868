"""The data report's ``long_texts`` block: how many texts are longer than ``model.max_length`` tokens.

Counted with the model's own tokenizer (special tokens included, as the task's ``encode`` adds them),
per split, for tasks that read ``text`` rows. A text over the limit is cut (``truncate``), loses its
middle (``head_tail``) or is read in windows (``chunk``: the windows it takes and those past
``model.chunk.max_chunks`` are counted too). One batched call of the fast tokenizer per split (about
5 s for 10,000 texts of 325 words with MiniLM's tokenizer on 2 busy cores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tunelab.config.model import ModelConfig
from tunelab.data.records import Record
from tunelab.tasks.windows import LongText, check_stride, windows_needed

ADVICE = (
    "set model.long_text: head_tail (keep the first and last tokens) or chunk (read every part in "
    "overlapping windows), or raise model.max_length"
)


def inputs(model: ModelConfig) -> dict[str, Any]:
    """What the count depends on outside the data (the data stage's fingerprint)."""
    keys = ("name", "revision", "trust_remote_code", "max_length", "long_text", "chunk")
    return {k: v for k, v in model.model_dump(mode="json").items() if k in keys}


def count(
    splits: dict[str, list[Record]], load_tokenizer: Callable[[], Any], model: ModelConfig, threshold: float
) -> tuple[dict[str, Any], list[str]]:
    """(the ``long_texts`` block, warnings for the train split); the block says why when it could not
    count (a tokenizer that does not load)."""
    settings = LongText.of(model)
    block: dict[str, Any] = {
        "max_length": settings.max_length,
        "long_text": settings.mode,
        "warn_above": threshold,
    }
    try:
        tokenizer = load_tokenizer()
        block["splits"] = {s: _split(tokenizer, [r.text for r in rs], settings) for s, rs in splits.items()}
    except Exception as exc:  # any failure to load or tokenise only costs the report this block
        why = " ".join(str(exc).split())[:300]
        block["skipped"] = f"the tokenizer of model.name {model.name!r} could not count tokens: {why}"
        return block, []
    return block, _warnings(block["splits"].get("train") or {}, settings, threshold)


def _split(tokenizer, texts: Sequence[str], settings: LongText) -> dict[str, Any]:
    """Texts, how many exceed max_length, their share, token counts and what cutting them loses."""
    if not texts:
        return {"texts": 0, "over": 0, "share": 0.0}
    ids = tokenizer(list(texts), return_attention_mask=False, return_token_type_ids=False, verbose=False)
    n = np.asarray([len(x) for x in ids["input_ids"]])
    over = n > settings.max_length
    out: dict[str, Any] = {
        "texts": len(texts),
        "over": int(over.sum()),
        "share": round(float(over.mean()), 4),
        "tokens": {"p50": int(np.median(n)), "p95": int(np.percentile(n, 95)), "max": int(n.max())},
        "mean_cut": round(float((n[over] - settings.max_length).mean()), 1) if over.any() else 0.0,
    }
    if settings.mode == "chunk":  # the windows the tokenizer will make of them in training
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        budget = settings.max_length - specials
        check_stride(tokenizer, settings)
        need = np.asarray([windows_needed(int(k) - specials, budget, settings.stride) for k in n])
        out["windows"] = int(np.minimum(need, settings.max_chunks).sum())
        out["dropped_windows"] = int(np.maximum(need - settings.max_chunks, 0).sum())
        out["capped_texts"] = int((need > settings.max_chunks).sum())
    return out


def _warnings(train: dict[str, Any], settings: LongText, threshold: float) -> list[str]:
    if not train.get("texts"):
        return []
    if settings.mode == "chunk":
        if not train.get("dropped_windows"):
            return []
        return [
            f"{train['capped_texts']:,} train texts need more than model.chunk.max_chunks "
            f"({settings.max_chunks}) windows of {settings.max_length} tokens: {train['dropped_windows']:,} "
            "windows past it are dropped; raise model.chunk.max_chunks or model.max_length"
        ]
    if train["share"] <= threshold:
        return []
    what = (
        "and lose their middle (model.long_text: head_tail); model.long_text: chunk reads all of them"
        if settings.mode == "head_tail"
        else f"and are cut; {ADVICE}"
    )
    return [
        f"{train['share']:.0%} of train texts ({train['over']:,} of {train['texts']:,}) are longer than "
        f"model.max_length ({settings.max_length} tokens; {train['mean_cut']:g} tokens over on average, "
        f"p95 length {train['tokens']['p95']}) {what}"
    ]
