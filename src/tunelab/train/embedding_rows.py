"""Only the input-embedding rows that the training split uses are trained (``train.used_embedding_rows``).

A full fine-tune of MiniLM trains a 30,522 x 384 word-embedding table, half of the model's 22.7M
parameters, while 3,000 Rotten Tomatoes rows use 8,611 of its token ids. A row no training batch looks
up gets a gradient of exactly zero at every step, yet a dense embedding gradient is zero-filled and
AdamW reads and writes the whole table (weights, gradient, both moments) each step, and clipping
takes its norm: about 9 ms of a 150 ms MiniLM step on a 2-core CPU (torch.profiler).

Here, for the length of ``fit``, the embedding's weight holds the used rows alone (the same
Parameter, so the optimiser, clipping, checkpoints and strategies see it under its own name); the full
table waits aside and serves only ids that never occur in training (validation or test text).
Every used row trains exactly as before. The one difference: AdamW's decoupled weight decay no longer
shrinks the unused rows, which it did by a factor of ``prod(1 - lr * weight_decay)`` over the run
(1 - 2.4e-5 over the MiniLM benchmark's 94 steps); with ``weight_decay: 0`` the result is the same.
After ``fit`` the trained rows are written back into the model's own embedding, which is put back.

Written here because torch's sparse embedding gradients need SparseAdam (no decoupled weight decay,
no fused kernel) and no kept library restricts a dense embedding's optimiser to the used rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

AUTO_MAX_SHARE = 0.75  # auto trains used rows alone when they are at most this share of the table


class UsedRowsEmbedding(nn.Embedding):
    """An ``nn.Embedding`` whose ``weight`` holds only the rows of ``_used`` (sorted token ids) while
    the switch is on: the same Parameter object, so the optimiser, the checkpoints (under the same
    name), gradual unfreezing and layer-wise learning rates all see the embedding as before. The full
    table waits in ``_full``; ids outside ``_used`` (never in training) are looked up there."""

    _full: torch.Tensor
    _used: torch.Tensor
    _local: torch.Tensor  # vocabulary id -> row of ``weight``, or -1
    _padding_local: int | None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._local.device != ids.device:
            self._local = self._local.to(ids.device)
        local = self._local[ids]
        if torch.compiler.is_compiling():  # a data-dependent branch would break the graph
            return F.embedding(local.clamp(min=0), self.weight, self._padding_local)
        unseen = local < 0
        if not bool(unseen.any()):
            return F.embedding(local, self.weight, self._padding_local)
        if self.training and torch.is_grad_enabled():
            first = int(ids[unseen][0])
            raise RuntimeError(
                f"train.used_embedding_rows: token id {first} is not in the training split, so its "
                "embedding row is not trained; set train.used_embedding_rows: false"
            )
        out = F.embedding(local.clamp(min=0), self.weight, self._padding_local)
        full = self._full.to(device=out.device, dtype=self.weight.dtype)
        return torch.where(unseen.unsqueeze(-1), F.embedding(ids, full, self.padding_idx), out)

    def merged(self) -> torch.Tensor:
        """The full table with the trained rows written in (a new tensor): what a checkpoint stores,
        so that it holds the same names and shapes with the switch on or off."""
        rows = self.weight.detach()
        full = self._full.to(rows.device)
        return full.index_copy(0, self._used.to(rows.device), rows)

    @torch.no_grad()
    def load_full(self, table: torch.Tensor) -> None:
        """Take a full table (a checkpoint's): the unused rows and the trained ones."""
        self._full.copy_(table)
        self.weight.copy_(table[self._used.to(table.device)])

    def extra_repr(self) -> str:
        return f"{len(self._used)} of {self.num_embeddings} rows trained, {self.embedding_dim}"


def used_ids(features: Iterable[dict], vocab: int, extra: Sequence[int | None] = ()) -> torch.Tensor:
    """Sorted token ids that ``features`` (their ``input_ids``) and ``extra`` use, below ``vocab``."""
    seen = np.zeros(vocab, dtype=bool)
    for f in features:
        ids = np.asarray(f["input_ids"], dtype=np.int64)
        seen[ids[(ids >= 0) & (ids < vocab)]] = True  # an id outside the table fails the lookup itself
    for i in extra:
        if i is not None and 0 <= i < vocab:
            seen[i] = True
    return torch.from_numpy(np.flatnonzero(seen))


def used_rows_problem(model: nn.Module) -> str | None:
    """Why ``model``'s input embedding cannot train its used rows alone, or None if it can."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    if type(emb) is not nn.Embedding:
        return f"{type(model).__name__} has no plain nn.Embedding input table"
    if not emb.weight.requires_grad:
        return "the input embedding is frozen"
    if emb.max_norm is not None or emb.scale_grad_by_freq or emb.sparse:
        return "the input embedding uses max_norm, scale_grad_by_freq or sparse gradients"
    shared = sum(p is emb.weight for _, p in model.named_parameters(remove_duplicate=False))
    if shared > 1:
        return "the input embedding is tied to another layer (an LM head)"
    return None


def use_used_rows(model: nn.Module, used: torch.Tensor) -> Callable[[], None]:
    """Make ``model``'s input embedding a :class:`UsedRowsEmbedding` of ``used`` (before the
    optimiser is built); returns the undo, which writes the trained rows into the full table and
    makes it the weight again."""
    emb = model.get_input_embeddings()
    weight = emb.weight
    used = used.to(weight.device)
    local = torch.full((emb.num_embeddings,), -1, dtype=torch.long, device=weight.device)
    local[used] = torch.arange(len(used), device=weight.device)
    full = weight.data
    emb._full, emb._used, emb._local = full, used, local
    emb._padding_local = int(local[emb.padding_idx]) if emb.padding_idx is not None else None
    weight.data = full[used].clone()
    emb.__class__ = UsedRowsEmbedding

    def undo() -> None:
        weight.data = emb.merged()
        emb.__class__ = nn.Embedding
        for attr in ("_full", "_used", "_local", "_padding_local"):
            delattr(emb, attr)

    return undo


def used_row_tables(model: nn.Module) -> dict[str, UsedRowsEmbedding]:
    """The switched embeddings of ``model`` by the name of their weight."""
    return {f"{name}.weight": m for name, m in model.named_modules() if isinstance(m, UsedRowsEmbedding)}
