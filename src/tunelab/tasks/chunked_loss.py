"""The answer-only causal-LM loss without the vocabulary-wide logits of every position.

A causal LM's training step usually computes ``lm_head`` over every position (batch x time x vocab:
for SmolLM2's 49k vocabulary at 8 x 128 tokens, 200 MB in fp32, kept for backward) and then drops
the prompt positions. Here the model runs its usual forward with ``logits_to_keep=1`` (transformers'
own switch: only the last position's logits) and ``output_hidden_states=True``; the final hidden
states are taken at the positions whose next token is scored (label != -100), and ``lm_head`` plus
cross-entropy run over those only, ``chunk`` tokens at a time, each chunk under
``torch.utils.checkpoint`` so its logits are recomputed in backward rather than kept.

Going through the model's own forward (not ``model.model`` / ``get_decoder()``) keeps every wrapper
on the path: peft's, DDP's gradient hooks and ``torch.compile``. ``lm_head`` is the unwrapped model's
output embedding, so tied embeddings and a LoRA-wrapped head train as in the plain loss.

Written here because no kept library does it on CPU and CUDA alike: Liger's fused linear
cross-entropy is Triton (CUDA) only, and torchtune's chunked loss needs a model that returns its
hidden states in chunks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tunelab.batching import IGNORE

# Config attributes of models whose logits are not lm_head(last hidden state): a softcap (Gemma 2),
# a scale (Cohere, Granite). Their loss would change under chunking, so it is refused for them.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def transformers_model(model: torch.nn.Module) -> Any:
    """The outermost transformers ``PreTrainedModel`` inside ``model`` (under peft, DDP, compile)."""
    from transformers import PreTrainedModel

    return next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)


def output_head(model: torch.nn.Module) -> torch.nn.Module:
    """The model's ``lm_head`` (tied to the input embeddings where the model ties them)."""
    inner = transformers_model(model)
    head = inner.get_output_embeddings() if inner is not None else None
    if head is None:
        raise ValueError("train.chunked_loss: the model has no output embeddings (lm_head)")
    return head


def chunking_problem(model: torch.nn.Module) -> str | None:
    """Why ``model``'s loss cannot be chunked, or None: the forward must take ``logits_to_keep`` and
    the logits must be ``lm_head`` of the last hidden state (no softcap or scale)."""
    import inspect

    inner = transformers_model(model)
    if inner is None or inner.get_output_embeddings() is None:
        return "the model has no lm_head"
    if "logits_to_keep" not in inspect.signature(inner.forward).parameters:
        return f"{type(inner).__name__}.forward takes no logits_to_keep"
    config = inner.config
    for name in LOGIT_TRANSFORMS:
        value = getattr(config, name, None)
        if value not in (None, 1, 1.0, False):
            return f"its logits are transformed after lm_head ({name}={value})"
    return None


def _chunk_loss(
    hidden: torch.Tensor, target: torch.Tensor, head: torch.nn.Module, smoothing: float
) -> torch.Tensor:
    logits = head(hidden).float()
    return F.cross_entropy(logits, target, reduction="sum", label_smoothing=smoothing)


def chunked_cross_entropy(
    hidden: torch.Tensor, labels: torch.Tensor, head: torch.nn.Module, chunk: int,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean next-token cross-entropy over the labels != -100, from the final hidden states.

    Equals ``cross_entropy(head(hidden)[:, :-1], labels[:, 1:], ignore_index=-100)`` (label smoothing
    included: its per-token term is summed then divided by the scored tokens, as torch's mean does).
    A batch with no scored token gives 0 (torch's mean would give NaN).
    """
    target = labels[:, 1:]
    keep = target != IGNORE
    states, target = hidden[:, :-1][keep], target[keep]  # position t predicts token t + 1
    total = states.new_zeros((), dtype=torch.float32)
    for start in range(0, target.numel(), chunk):
        part = slice(start, start + chunk)
        total = total + checkpoint(
            _chunk_loss, states[part], target[part], head, label_smoothing, use_reentrant=False
        )
    return total / max(target.numel(), 1)


class ChunkedAnswerLoss:
    """The ``answer_only`` loss computed by :func:`chunked_cross_entropy` from a model call.

    ``forward(model, batch, **extra)`` is the task's forward; the first call on a model checks once
    that ``lm_head`` of the returned last hidden state gives the model's own logits.
    """

    def __init__(self, chunk: int, label_smoothing: float = 0.0) -> None:
        self.chunk, self.label_smoothing = chunk, label_smoothing
        self._heads: dict[int, torch.nn.Module] = {}  # id(model) -> its checked lm_head

    def __call__(self, forward, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = forward(model, batch, output_hidden_states=True, logits_to_keep=1)
        hidden = out.hidden_states[-1]
        head = self._heads.get(id(model))
        if head is None:
            head = output_head(model)
            self._check(head, hidden, out.logits)
            self._heads[id(model)] = head
        return chunked_cross_entropy(hidden, batch["labels"], head, self.chunk, self.label_smoothing)

    @staticmethod
    def _check(head: torch.nn.Module, hidden: torch.Tensor, logits: torch.Tensor) -> None:
        with torch.no_grad():
            mine, theirs = head(hidden[:, -1].detach()).float(), logits[:, -1].detach().float()
        # bf16 autocast rounds both the same way up to the matmul's blocking: a loose bound, still far
        # below what a softcap or a scale changes
        if not torch.allclose(mine, theirs, rtol=2e-2, atol=2e-2 * (1.0 + float(theirs.abs().max()))):
            raise ValueError(
                "train.chunked_loss: lm_head of the model's last hidden state is not its logits "
                "(the model transforms them); set train.chunked_loss: false"
            )
