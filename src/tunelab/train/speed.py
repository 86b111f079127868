"""The training-speed switches of ``train:`` resolved for this run, and recorded in its summary.

``auto`` means:

- ``chunked_loss``: on where the task computes the answer_only loss of a causal LM whose logits are
  ``lm_head`` of the last hidden state (sft, lm); off elsewhere.
- ``compile``: on with CUDA; off on CPU, where inductor's compile time (tens of seconds per batch
  shape for a 135M model on 2 cores) has not been shown to pay back over a fine-tuning run.
- ``pad_to_multiple_of``: with compile, the bucket that bounds recompilations (``compile.bucket``);
  else 8 on CUDA (bf16/tf32 tensor-core GEMMs want dimensions in multiples of 8, the value HF's
  collators use) and 4 on CPU. On CPU the padded tokens cost their FLOPs (MiniLM, 3,000 Rotten
  Tomatoes rows in length groups: 13% of the tokens computed are padding at 8, 7% at 4, 2% at 1),
  while few shapes keep the heap from fragmenting: the freed activations of one step fit the next
  step's. Measured, MiniLM bf16 on an AVX512-BF16 CPU, each batch stepped once per setting in one
  process: 4 was 2-6% faster than 8 and 1 was 4% faster, but 1 peaked at 1,871 MB against 1,430 to
  1,520 MB for 4 and 8 (separate runs).
- ``fast_dropout``: on CPU without compile (torch's CPU ``bernoulli_`` is the cost it removes; CUDA's
  is cheap, and inductor draws its own); see :mod:`tunelab.train.fast_dropout`.
- ``attention``: on CPU without compile, the explicit math up to 128 keys and sdpa beyond; elsewhere
  sdpa; see :mod:`tunelab.train.attention`.
- ``keep_freed_memory``: on CPU where the process allocates with glibc; see
  :mod:`tunelab.train.allocator`.
- ``used_embedding_rows``: on CPU without compile, for a trainable untied ``nn.Embedding`` input table
  of which the training split uses at most 3/4 of the rows; see :mod:`tunelab.train.embedding_rows`.
- ``pooled_last_layer``: on wherever the model is a first-token sequence classifier (it changes no
  result, on any device); see :mod:`tunelab.train.pooled_layer`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from tunelab.batching import round_up
from tunelab.config.train import TrainConfig
from tunelab.tasks.chunked_loss import transformers_model
from tunelab.train.allocator import glibc_available, keep_freed_memory
from tunelab.train.attention import MAX_MATH_KEYS, use_train_attention
from tunelab.train.compile import bucket
from tunelab.train.embedding_rows import AUTO_MAX_SHARE, use_used_rows, used_ids, used_rows_problem
from tunelab.train.fast_dropout import use_fast_dropout
from tunelab.train.pooled_layer import pooled_layer_problem, use_pooled_last_layer

log = logging.getLogger("tunelab")


@dataclass
class Speed:
    """The resolved switches (no ``auto`` left); :meth:`summary`, what train_summary.json records, is
    every field but the working state kept out of ``repr``."""

    precision: str
    intra_op_threads: int
    inter_op_threads: int
    chunked_loss: bool
    loss_chunk_tokens: int | None
    batch_tokens: int | None
    pad_to_multiple_of: int
    compile: bool
    gradient_checkpointing: bool
    fast_dropout: bool
    attention: str  # sdpa | math | math<=N (the explicit math up to N keys, sdpa beyond)
    pooled_last_layer: bool = False
    keep_freed_memory: bool = False
    used_embedding_rows: int = 0  # input-embedding rows trained (0: the whole table, the switch off)
    over_budget_examples: int = 0  # examples longer than batch_tokens: each a batch of its own
    # ``attention`` for use_train_attention: the most keys the math takes (None: any; 0: only rows
    # with attention dropout to draw, which torch would run as math anyway)
    max_math_keys: int | None = field(default=0, repr=False)
    undo: list[Callable[[], None]] = field(default_factory=list, repr=False)
    used_rows: torch.Tensor | None = field(default=None, repr=False)  # their token ids

    @classmethod
    def resolve(
        cls, cfg: TrainConfig, task: Any, model: torch.nn.Module, device: torch.device, precision: str,
        lengths: list[int], threads: dict[str, int], train: Sequence[dict] = (), pad_id: int | None = None,
    ) -> Speed:
        cuda = device.type == "cuda"
        compiled = cuda if cfg.compile == "auto" else bool(cfg.compile)
        multiple = cfg.pad_to_multiple_of
        if multiple == "auto":
            multiple = bucket(max(lengths, default=1)) if compiled else (8 if cuda else 4)
        budget = cfg.batch_tokens
        over = sum(round_up(n, multiple) > budget for n in lengths) if budget else 0
        if over:
            log.warning("train.batch_tokens: %d example(s) exceed the budget of %d; each gets a batch alone",
                        over, budget)
        chunked = _chunked(cfg, task, model)
        eager_cpu = device.type == "cpu" and not compiled  # where auto turns the CPU switches on
        fast = eager_cpu if cfg.fast_dropout == "auto" else bool(cfg.fast_dropout)
        attention, keys = cfg.attention, {"sdpa": 0, "math": None}.get(cfg.attention)
        if attention == "auto":
            attention, keys = (f"math<={MAX_MATH_KEYS}", MAX_MATH_KEYS) if eager_cpu else ("sdpa", 0)
        used = _used_rows(cfg, model, train, pad_id, eager_cpu)
        return cls(
            used_embedding_rows=0 if used is None else len(used), used_rows=used,
            fast_dropout=fast, attention=attention, max_math_keys=keys,
            pooled_last_layer=_pooled(cfg, model), keep_freed_memory=_keep(cfg, device),
            precision=precision, chunked_loss=chunked,
            loss_chunk_tokens=cfg.loss_chunk_tokens if chunked else None,
            batch_tokens=budget, pad_to_multiple_of=int(multiple), compile=compiled,
            gradient_checkpointing=cfg.gradient_checkpointing, over_budget_examples=over, **threads,
        )

    def summary(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.repr}

    def apply(self, task: Any, model: torch.nn.Module) -> None:
        """Switch the task's loss, the model's checkpointing, dropout and attention to these settings
        (before ``prepare``)."""
        if hasattr(task, "use_chunked_loss"):
            task.use_chunked_loss(self.loss_chunk_tokens if self.chunked_loss else None)
        if self.chunked_loss:
            self.undo.append(lambda: task.use_chunked_loss(None))
        if self.gradient_checkpointing:
            self.undo.append(enable_gradient_checkpointing(model))
        if self.fast_dropout:
            self.undo.append(use_fast_dropout(model))
        if self.attention != "sdpa" or self.fast_dropout:
            undo = use_train_attention(model, self.max_math_keys, self.fast_dropout)
            if undo is not None:
                self.undo.append(undo)
        if self.pooled_last_layer:
            self.undo.append(use_pooled_last_layer(model))
        if self.used_rows is not None:
            self.undo.append(use_used_rows(model, self.used_rows))
        if self.keep_freed_memory:
            undo = keep_freed_memory()
            if undo is not None:
                self.undo.append(undo)

    def restore(self) -> None:
        """Undo :meth:`apply` (after training: the model and task are used on as they were)."""
        while self.undo:
            self.undo.pop()()


def _keep(cfg: TrainConfig, device: torch.device) -> bool:
    glibc = glibc_available()
    if cfg.keep_freed_memory is True and not glibc:
        raise ValueError("train.keep_freed_memory: true, but this process does not allocate with glibc")
    wanted = device.type == "cpu" if cfg.keep_freed_memory == "auto" else cfg.keep_freed_memory
    return wanted and glibc


def _used_rows(
    cfg: TrainConfig, model: torch.nn.Module, train: Sequence[dict], pad_id: int | None, eager_cpu: bool
) -> torch.Tensor | None:
    """The token ids whose embedding rows train alone, or None for the whole table."""
    if cfg.used_embedding_rows is False or (cfg.used_embedding_rows == "auto" and not eager_cpu):
        return None
    problem = used_rows_problem(model)
    if problem is None and not train:
        problem = "there is no training split to take the used ids from"
    if problem is not None:
        if cfg.used_embedding_rows is True:
            raise ValueError(f"train.used_embedding_rows: true, but {problem}; set it to auto or false")
        return None
    emb = model.get_input_embeddings()
    used = used_ids(train, emb.num_embeddings, (pad_id, emb.padding_idx))
    if cfg.used_embedding_rows == "auto" and len(used) > AUTO_MAX_SHARE * emb.num_embeddings:
        return None
    log.info("train.used_embedding_rows: training %s of %s input-embedding rows", f"{len(used):,}",
             f"{emb.num_embeddings:,}")
    return used


def _pooled(cfg: TrainConfig, model: torch.nn.Module) -> bool:
    if cfg.pooled_last_layer is False:
        return False
    problem = pooled_layer_problem(model)
    if problem is not None and cfg.pooled_last_layer is True:
        raise ValueError(f"train.pooled_last_layer: true, but {problem}; set it to auto or false")
    return problem is None


def _chunked(cfg: TrainConfig, task: Any, model: torch.nn.Module) -> bool:
    if cfg.chunked_loss is False:
        return False
    if not hasattr(task, "chunked_loss_problem"):
        problem: str | None = f"task {task.name!r} has no causal-LM loss (chunking is for sft and lm)"
    else:
        problem = task.chunked_loss_problem(model)
    if problem is None:
        return True
    if cfg.chunked_loss is True:
        raise ValueError(f"train.chunked_loss: true, but {problem}; set it to auto or false")
    if hasattr(task, "chunked_loss_problem"):  # auto on a causal LM that cannot: worth a line
        log.info("train.chunked_loss: auto stays off: %s", problem)
    return False


def enable_gradient_checkpointing(model: torch.nn.Module) -> Callable[[], None]:
    """transformers' activation checkpointing (non-reentrant) on ``model``'s transformers module,
    with input embeddings that require grad under peft; returns the function that undoes it."""
    inner = transformers_model(model)
    if inner is None or not getattr(inner, "supports_gradient_checkpointing", False):
        name = type(inner or model).__name__
        raise ValueError(f"train.gradient_checkpointing: {name} does not support gradient checkpointing")
    kwargs = {"use_reentrant": False}
    if hasattr(inner, "activation_checkpointing_enable"):  # the transformers 5.x name
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        disable = inner.activation_checkpointing_disable
    else:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        disable = inner.gradient_checkpointing_disable
    hooked = False
    if hasattr(model, "peft_config") and not getattr(inner, "_require_grads_hooks", None):
        # frozen embeddings give checkpointed layers inputs without grad; peft's own recipe
        inner.enable_input_require_grads()
        hooked = True

    def undo() -> None:
        disable()
        if hooked or getattr(inner, "_require_grads_hooks", None):
            inner.disable_input_require_grads()

    return undo
