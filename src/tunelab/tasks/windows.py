"""Long texts: how a text longer than ``model.max_length`` becomes model inputs, and how the outputs of
its windows come back to one per text.

- ``truncate``: the first ``max_length`` tokens, by the tokenizer's own truncation (what tunelab always did).
- ``head_tail``: the first quarter and the last three quarters of the token budget, the tokenizer's
  special tokens around them. Sun et al. 2019 ("How to Fine-Tune BERT for Text Classification") found
  head + tail better than the head or the tail alone on long reviews and news.
- ``chunk``: overlapping windows (``model.chunk.stride`` shared tokens) made by the fast tokenizer itself
  (``return_overflowing_tokens`` and ``overflow_to_sample_mapping``), each a full model input with its
  special tokens, at most ``model.chunk.max_chunks`` per text. Training sees every window with its row's
  label; predictions pool the windows' logits per row (mean or max) before softmax or loss.

The tasks' ``encode`` / ``predict`` and every later stage that scores texts itself (audit, serve) go
through this module, so they all read a long text the way the model was trained to read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tunelab.config.model import ModelConfig
from tunelab.tasks.loading import on_device

MODES = ("truncate", "head_tail", "chunk")
HEAD_SHARE = 0.25  # head_tail: the head's share of the token budget, the tail has the rest
GROUP = "group"  # the feature / batch key holding a window's row index (chunk only)


@dataclass(frozen=True)
class LongText:
    """How texts longer than ``max_length`` tokens are read (``model.long_text`` and ``model.chunk``)."""

    max_length: int
    mode: str = "truncate"
    stride: int = 64
    pooling: str = "mean"
    max_chunks: int = 8

    @classmethod
    def of(cls, model: ModelConfig) -> LongText:
        """The settings of a recipe's ``model`` section."""
        c = model.chunk
        return cls(model.max_length, model.long_text, c.stride, c.pooling, c.max_chunks)

    def info(self) -> dict[str, Any]:
        """What ``tunelab_model.json`` and ``tunelab_export.json`` keep, as the recipe writes it:
        ``long_text`` and, for ``chunk``, its ``chunk`` settings (``max_length`` is saved beside them)."""
        chunk = {"stride": self.stride, "pooling": self.pooling, "max_chunks": self.max_chunks}
        return {"long_text": self.mode, "chunk": chunk if self.mode == "chunk" else None}

    @classmethod
    def from_info(cls, info: Mapping[str, Any] | None, max_length: int | None = None) -> LongText:
        """The settings saved with a model (see :meth:`info`); ``truncate`` for a model saved before
        there was a choice. ``max_length`` (a served model's, say) wins over the saved one."""
        info = info or {}
        length = int(max_length or info.get("max_length") or 512)
        chunk = info.get("chunk") or {}
        keys = ("stride", "pooling", "max_chunks")
        mode = str(info.get("long_text") or "truncate")
        return cls(length, mode, **{k: chunk[k] for k in keys if k in chunk})


@dataclass
class Windows:
    """Model inputs for ``rows`` texts: one per text, or several (``chunk``) with the text of each."""

    input_ids: list[list[int]]
    group: list[int]  # the row (index into the texts) of each window
    rows: int
    dropped: int = 0  # chunk: windows past max_chunks, not kept
    capped: int = 0  # chunk: texts that lost windows to max_chunks
    per_row: list[int] = field(default_factory=list)  # windows kept per text

    @property
    def tokens(self) -> list[int]:
        """Tokens the model reads per text (summed over its windows)."""
        out = [0] * self.rows
        for ids, g in zip(self.input_ids, self.group, strict=True):
            out[g] += len(ids)
        return out


def make_windows(tokenizer, texts: Sequence[str], settings: LongText) -> Windows:
    """Token ids of ``texts`` as ``settings`` say; for ``truncate`` exactly ``tokenizer(texts,
    truncation=True, max_length=...)``."""
    texts = list(texts)
    n = len(texts)
    if settings.mode not in MODES:
        raise ValueError(f"model.long_text: {settings.mode!r} is not one of {', '.join(MODES)}")
    if not texts:
        return Windows([], [], 0)
    if settings.mode == "chunk":
        return _chunk(tokenizer, texts, settings)
    if settings.mode == "head_tail":
        ids = _head_tail(tokenizer, texts, settings.max_length)
    else:
        ids = tokenizer(texts, truncation=True, max_length=settings.max_length)["input_ids"]
    return Windows(list(ids), list(range(n)), n, per_row=[1] * n)


def content_budget(tokenizer, max_length: int) -> int:
    """Text tokens that fit in one model input beside the tokenizer's special tokens."""
    return max_length - tokenizer.num_special_tokens_to_add(pair=False)


def _head_tail(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """The first quarter and the last three quarters of the budget of each text longer than it."""
    budget = content_budget(tokenizer, max_length)
    head = max(1, int(budget * HEAD_SHARE))
    tail = budget - head
    ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]
    cut = [x if len(x) <= budget else x[:head] + x[-tail:] for x in ids]
    if hasattr(tokenizer, "build_inputs_with_special_tokens"):  # python tokenizers (and transformers 4)
        return [tokenizer.build_inputs_with_special_tokens(x) for x in cut]
    before, after = special_tokens_around(tokenizer)
    return [before + x + after for x in cut]


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a fast tokenizer's post-processor puts before and after one text ([CLS] ... [SEP]).

    transformers 5 fast tokenizers have no ``build_inputs_with_special_tokens``; asking the
    post-processor once (instead of once per text on a copied ``tokenizers.Encoding``, 4 ms each) gives
    the same ids: for a single text its template is fixed (checked against ``tokenizer(text)`` in tests).
    """
    probe = "a"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for at in range(len(full) - len(bare) + 1):
        if full[at : at + len(bare)] == bare:
            return full[:at], full[at + len(bare) :]
    name = type(tokenizer).__name__
    raise ValueError(f"cannot tell where {name} puts its special tokens: use long_text truncate or chunk")


def check_stride(tokenizer, settings: LongText) -> None:
    """``model.chunk.stride`` must leave a window room to move on (the tokenizer refuses otherwise)."""
    budget = content_budget(tokenizer, settings.max_length)
    if settings.stride >= budget:
        raise ValueError(
            f"model.chunk.stride ({settings.stride}) must be below model.max_length ({settings.max_length}) "
            f"minus the {settings.max_length - budget} special tokens this tokenizer adds, i.e. at most "
            f"{budget - 1}"
        )


def _chunk(tokenizer, texts: list[str], settings: LongText) -> Windows:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "model.long_text: chunk needs a fast (tokenizers) tokenizer for its overlapping windows; "
            f"{type(tokenizer).__name__} is not one: use head_tail or truncate"
        )
    check_stride(tokenizer, settings)
    enc = tokenizer(
        texts,
        truncation=True,
        max_length=settings.max_length,
        stride=settings.stride,
        return_overflowing_tokens=True,
        return_attention_mask=False,
    )
    ids, group, per_row, dropped = [], [], [0] * len(texts), [0] * len(texts)
    for window, row in zip(enc["input_ids"], enc["overflow_to_sample_mapping"], strict=True):
        row = int(row)
        if per_row[row] >= settings.max_chunks:
            dropped[row] += 1
            continue
        per_row[row] += 1
        ids.append(window)
        group.append(row)
    return Windows(ids, group, len(texts), sum(dropped), sum(d > 0 for d in dropped), per_row)


def windows_needed(tokens: int, budget: int, stride: int) -> int:
    """Windows the tokenizer makes of a text of ``tokens`` text tokens (no special tokens), ``budget``
    per window, consecutive windows sharing ``stride``: for the report's count, without tokenising twice
    (a test checks it against :func:`make_windows`)."""
    if tokens <= budget:
        return 1
    return 1 + -(-(tokens - budget) // (budget - stride))


# pooling ------------------------------------------------------------------------------------------
def pool(outputs: torch.Tensor, group: Sequence[int] | torch.Tensor, how: str) -> torch.Tensor:
    """One row of ``outputs`` (windows x outputs) per distinct group, in ascending group order: the
    mean or the max of its windows. A group of one window keeps its values exactly."""
    _, inverse = _rows(group)
    n = int(inverse.max()) + 1 if len(inverse) else 0
    reduce = {"mean": "mean", "max": "amax"}[how]
    out = torch.zeros((n, *outputs.shape[1:]), dtype=outputs.dtype, device=outputs.device)
    index = inverse.to(outputs.device).reshape(-1, *([1] * (outputs.dim() - 1))).expand_as(outputs)
    return out.scatter_reduce_(0, index, outputs, reduce, include_self=False)


def _rows(group: Sequence[int] | torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """(first window of each row, each window's position among the rows)."""
    g = group.cpu().numpy() if isinstance(group, torch.Tensor) else np.asarray(group)
    _, first, inverse = np.unique(g, return_index=True, return_inverse=True)
    return first, torch.from_numpy(inverse.reshape(-1).astype(np.int64))


def row_index(group: Sequence[int] | torch.Tensor) -> np.ndarray:
    """For each window, the position of its row in the pooled (row-order) outputs."""
    return _rows(group)[1].numpy()


def grouped_rows(features: Sequence[Mapping[str, Any]]) -> int | None:
    """How many rows windowed features come from (None: features are rows already)."""
    if not features or GROUP not in features[0]:
        return None
    return len({f[GROUP] for f in features})


def row_outputs(
    forward: Callable[[Any, dict[str, torch.Tensor]], Any],
    model,
    batches: Iterable[dict[str, torch.Tensor]],
    how: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits and labels of every batch, on the CPU, one per row: the windows of a row (batches
    with a ``group``) pooled into its logits, its label the first window's."""
    logits, labels, groups = [], [], []
    for batch in batches:
        batch = on_device(model, batch)
        logits.append(forward(model, batch).logits.float().cpu())
        labels.append(batch["labels"].cpu())
        if GROUP in batch:
            groups.append(batch[GROUP].cpu())
    if not logits:
        return torch.empty((0, 0)), torch.empty(0)
    out, gold = torch.cat(logits), torch.cat(labels)
    if groups:
        group = torch.cat(groups)
        first, _ = _rows(group)
        out, gold = pool(out, group, how), gold[torch.from_numpy(first)]
    return out, gold


def scored_texts(
    model, tokenizer, texts: Sequence[str], settings: LongText, batch_size: int = 32
) -> tuple[torch.Tensor, list[int]]:
    """(logits per text, pooled over its windows; tokens the model read per text). Windows run in
    length-sorted batches of ``batch_size`` (one batch keeps the texts' order), padded per batch."""
    win = make_windows(tokenizer, texts, settings)
    device = next(model.parameters()).device
    order = sorted(range(len(win.input_ids)), key=lambda i: len(win.input_ids[i]))
    if len(order) <= batch_size:
        order = list(range(len(win.input_ids)))
    found: list[torch.Tensor | None] = [None] * len(order)
    for start in range(0, len(order), max(batch_size, 1)):
        idx = order[start : start + batch_size]
        ids = {"input_ids": [win.input_ids[i] for i in idx]}
        batch = tokenizer.pad(ids, padding=True, return_tensors="pt")
        out = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
        for k, i in enumerate(idx):
            found[i] = out[k]
    if not found:
        return torch.empty((0, 0)), []
    logits = torch.stack(found)  # type: ignore[arg-type]
    if settings.mode == "chunk":
        logits = pool(logits, win.group, settings.pooling)
    return logits, win.tokens


@torch.inference_mode()
def pooled_logits(
    model, tokenizer, texts: Sequence[str], settings: LongText, batch_size: int = 32
) -> torch.Tensor:
    """(n texts, outputs) fp32 logits, each text read as ``settings`` say (windows pooled)."""
    model.eval()
    return scored_texts(model, tokenizer, texts, settings, batch_size)[0]
