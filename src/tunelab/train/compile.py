"""``train.compile``: the model the training steps call, compiled by torch.compile (inductor).

Static shapes (``dynamic=False``) give inductor its best kernels; each new (rows, length) shape of a
training batch compiles once more, so lengths are padded to a bucket (``pad_to_multiple_of``) and
the recompile limit is raised to the number of shapes an epoch has, plus a margin. Only training
steps use the compiled module: validation runs the plain one (its batches have other shapes and no
backward), and checkpoints and ``save_pretrained`` read the plain module's parameters, the very
same tensors, so no ``_orig_mod.`` prefix reaches a saved file.
"""

from __future__ import annotations

import torch

from tunelab.batching import round_up

SHAPE_MARGIN = 8  # later epochs can meet a few (rows, length) pairs the first one did not
BUCKETS = 8  # auto bucket: at most this many padded lengths up to the longest row


def bucket(longest: int) -> int:
    """The auto ``pad_to_multiple_of`` under compile: the smallest allowed multiple (8 to 64) that
    leaves at most ``BUCKETS`` padded lengths up to ``longest`` (128 tokens -> 16, 512 -> 64)."""
    return next((m for m in (8, 16, 32, 64) if -(-longest // m) <= BUCKETS), 64)


def batch_shapes(batches: list[list[int]], lengths: list[int], multiple: int) -> int:
    """Distinct (rows, padded length) shapes among ``batches``."""
    return len({(len(b), round_up(max(lengths[i] for i in b), multiple)) for b in batches if b})


def compile_for_training(model: torch.nn.Module, shapes: int) -> torch.nn.Module:
    """``torch.compile(model)`` with room for ``shapes`` static-shape graphs (a new shape past the
    limit falls back to eager with a warning, it does not fail)."""
    import torch._dynamo

    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # the newer name, and the older one
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), shapes + SHAPE_MARGIN))
    return torch.compile(model, backend="inductor", dynamic=False)
