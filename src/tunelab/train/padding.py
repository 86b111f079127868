"""Pad a collated training batch to a multiple of a length (``train.pad_to_multiple_of``).

Done here, on the batch the task's ``collate`` built, so that every task gets it without its
collate changing (``tokenizer.pad(pad_to_multiple_of=...)`` would do it only for the tasks that pad
with the tokenizer). The padding is what each collate already pads with: the pad token, attention
mask 0, label -100; it is added on the side the batch is already padded on.
"""

from __future__ import annotations

import torch

from tunelab.batching import IGNORE, round_up

FILL = {"attention_mask": 0, "labels": IGNORE, "token_type_ids": 0}


def pad_batch(batch: dict[str, torch.Tensor], multiple: int, pad_id: int | None) -> dict[str, torch.Tensor]:
    """``batch`` with its (rows, time) tensors padded so that time is a multiple of ``multiple``."""
    ids = batch["input_ids"]
    rows, width = ids.shape
    extra = round_up(width, multiple) - width
    if multiple <= 1 or extra == 0:
        return batch
    mask = batch.get("attention_mask")
    left = mask is not None and bool((mask[:, 0] == 0).any())  # a left-padded batch stays left-padded
    out = {}
    for key, value in batch.items():
        if value.dim() != 2 or value.shape != (rows, width):
            out[key] = value  # e.g. classification labels (rows,)
            continue
        if key == "position_ids":
            out[key] = torch.cat([value, _positions(value, mask, extra)], dim=1)
            continue
        fill = pad_id if key == "input_ids" else FILL.get(key, 0)
        block = value.new_full((rows, extra), fill if fill is not None else 0)
        out[key] = torch.cat([block, value] if left else [value, block], dim=1)
    return out


def _positions(positions: torch.Tensor, mask: torch.Tensor | None, extra: int) -> torch.Tensor:
    """Positions of the added (right) padding: a row's padding tail continues; after a full row a new
    sequence starts at 0, so packed rows' padding never joins a real example's sequence."""
    step = torch.arange(extra, device=positions.device, dtype=positions.dtype)
    last = positions[:, -1:]
    ended_in_padding = mask[:, -1:] == 0 if mask is not None else torch.zeros_like(last, dtype=torch.bool)
    start = torch.where(ended_in_padding, last + 1, torch.zeros_like(last))
    return start + step
