"""The last encoder layer computes only the position the classification head reads
(``train.pooled_last_layer``).

A BERT-family sequence classifier (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA) reads one position of
the last layer's output: the first token (``[CLS]`` / ``<s>``). Everything else the last layer
computes (the queries, attention output, feed-forward and layer norms of the other positions) is
thrown away by the head. So during training the last layer computes keys and values over every
position, as it must, and all the rest for the first position alone: about five sixths of that
layer's matmuls and element-wise work, and its activations, are skipped, and the logits are the same
(the same arithmetic on the same numbers; tests check logits and gradients to 1e-5 relative).

Written here because neither transformers nor torch prunes work that a head does not read. The
layer's forward is replaced on the instance (``layer.forward``), so its class, weights, state dict,
hooks and gradient checkpointing stay as they are; the undo deletes the instance attribute.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tunelab.tasks.chunked_loss import transformers_model

# sequence classifiers whose head reads the first position of the last layer, and only it
FIRST_TOKEN_HEADS = {
    "BertForSequenceClassification": "bert",
    "RobertaForSequenceClassification": "roberta",
    "XLMRobertaForSequenceClassification": "roberta",
    "CamembertForSequenceClassification": "roberta",
    "ElectraForSequenceClassification": "electra",
}
# attention implementations whose mask is 4-D (rows are queries) or None
_FOUR_D_MASKS = ("sdpa", "eager", "tunelab_train_")


def pooled_layer_problem(model: nn.Module) -> str | None:
    """Why ``model``'s last layer cannot compute the head's position alone; None where it can."""
    inner = transformers_model(model)
    name = type(inner).__name__
    if name not in FIRST_TOKEN_HEADS:
        return f"{name} is not a first-token sequence classifier ({', '.join(sorted(FIRST_TOKEN_HEADS))})"
    config = inner.config
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return f"{name} is configured as a decoder"
    implementation = str(getattr(config, "_attn_implementation", None))
    if not implementation.startswith(_FOUR_D_MASKS):
        return f"attention {implementation!r} (sdpa and eager only)"
    layer = _last_layer(inner)
    if layer is None:
        return f"{name} has no encoder layers of the BERT layout"
    return None


def _last_layer(inner: nn.Module) -> nn.Module | None:
    base = getattr(inner, FIRST_TOKEN_HEADS[type(inner).__name__], None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not layers:
        return None
    last = layers[-1]
    attention = getattr(last, "attention", None)
    needed = (
        all(hasattr(getattr(attention, "self", None), a) for a in ("query", "key", "value", "dropout"))
        and hasattr(attention, "output") and hasattr(last, "feed_forward_chunk")
    )
    return last if needed else None


def first_position_forward(
    self: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
    *args: Any, **kwargs: Any,
) -> torch.Tensor:
    """A BERT-layout layer's forward for the first position alone: ``(batch, 1, hidden)``.

    Keys and values come from every position; the queries, attention output and feed-forward only
    from the first, exactly as the full layer computes that position.
    """
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    attention = self.attention.self
    batch, length, _ = hidden_states.shape
    size = attention.attention_head_size
    first = hidden_states[:, :1]
    query = attention.query(first).view(batch, 1, -1, size).transpose(1, 2)
    key = attention.key(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    value = attention.value(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    mask = attention_mask[..., :1, :] if attention_mask is not None else None
    kernel = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, None)
    if kernel is None:  # eager: transformers' module-level function of this model
        kernel = _eager(type(self))
    out, _ = kernel(
        attention, query, key, value, mask,
        dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling,
    )
    attended = self.attention.output(out.reshape(batch, 1, -1), first)
    return self.feed_forward_chunk(attended)


def _eager(layer_class: type) -> Callable[..., Any]:
    return sys.modules[layer_class.__module__].eager_attention_forward


def use_pooled_last_layer(model: nn.Module) -> Callable[[], None]:
    """Make ``model``'s last encoder layer compute the first position alone; returns the undo.

    Raises ``ValueError`` where :func:`pooled_layer_problem` names a problem.
    """
    problem = pooled_layer_problem(model)
    if problem is not None:
        raise ValueError(f"train.pooled_last_layer: {problem}")
    layer = _last_layer(transformers_model(model))
    layer.forward = types.MethodType(first_position_forward, layer)

    def undo() -> None:
        if "forward" in vars(layer):
            del layer.forward

    return undo
