"""Layer-wise analysis: pooled hidden states, linear probes, CKA and the logit lens.

Pure functions over a loaded transformers model (or a peft model) and pre-built batches (dicts of tensors
with ``input_ids`` and ``attention_mask``). Hidden-state layer 0 is the embeddings output; layer ``i`` is the
output of transformer layer ``i``.

Note on the last hidden state: in transformers 5.x ``capture_outputs`` overwrites ``hidden_states[-1]`` with
``last_hidden_state``, i.e. the state *after* the model's final norm (unless ``config.tie_last_hidden_states``
is false). The logit lens therefore decides, by measurement against the model's own logits, whether the last
layer still needs the final norm, and never applies it twice.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

POOLINGS = ("auto", "cls", "mean", "last")
_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f", "norm_f", "final_norm")
_DROP_KEYS = ("labels", "label", "label_ids")


def _unwrap(model: Any) -> Any:
    """The transformers model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _is_causal(model: Any) -> bool:
    """Whether ``model`` is a decoder-only (causal) model, whose summary token is the last real one."""
    base = _unwrap(model)
    config = base.config
    if getattr(config, "is_decoder", False):
        return True
    name = type(base).__name__
    if "CausalLM" in name or name.endswith("LMHeadModel"):
        return True
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def _resolve_pooling(model: Any, pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if pooling == "auto":
        return "last" if _is_causal(model) else "mean"
    return pooling


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row (works for left and right padding)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, -1).max(dim=1).values.clamp(min=0)


def _pool(state: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    state = state.float()
    if pooling == "cls":
        return state[:, 0]
    if pooling == "mean":
        weights = mask.to(state.dtype).unsqueeze(-1)
        return (state * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return state[torch.arange(state.shape[0], device=state.device), _last_index(mask)]


def _prepare(model: Any, batch: Mapping[str, Any], causal: bool) -> dict[str, Any]:
    """Batch on the model's device, without labels; position ids from the mask for (left-padded) decoders."""
    device = next(_unwrap(model).parameters()).device
    inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items() if k not in _DROP_KEYS}
    if "input_ids" not in inputs:
        raise ValueError("each batch needs 'input_ids'")
    if inputs.get("attention_mask") is None:
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if causal and "position_ids" not in inputs:
        accepts = inspect.signature(_unwrap(model).forward).parameters
        if "position_ids" in accepts:
            mask = inputs["attention_mask"].long()
            inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    return inputs


def _hidden_states(model: Any, inputs: dict[str, Any]) -> tuple[Any, tuple[torch.Tensor, ...]]:
    outputs = model(**inputs, output_hidden_states=True, return_dict=True)
    states = getattr(outputs, "hidden_states", None)
    if states is None:
        raise ValueError(
            f"{type(_unwrap(model)).__name__} returned no hidden_states with output_hidden_states=True "
            "(encoder-decoder models are not supported)"
        )
    return outputs, states


def layer_states(model: Any, batches: Iterable[Mapping[str, Any]], pooling: str = "auto") -> list[np.ndarray]:
    """Pooled hidden states: one ``(n_examples, hidden)`` float32 array per layer (0 = embeddings).

    ``pooling``: "mean" (over real tokens), "last" (last real token, left or right padding), "cls" (first
    token) or "auto" ("last" for causal LMs, "mean" for encoders).
    """
    causal = _is_causal(model)
    pooling = _resolve_pooling(model, pooling)
    was_training = model.training
    model.eval()
    per_layer: list[list[np.ndarray]] = []
    try:
        with torch.no_grad():
            for batch in batches:
                inputs = _prepare(model, batch, causal)
                _, states = _hidden_states(model, inputs)
                if not per_layer:
                    per_layer = [[] for _ in states]
                elif len(states) != len(per_layer):
                    raise ValueError("batches gave different numbers of hidden-state layers")
                for store, state in zip(per_layer, states, strict=True):
                    store.append(_pool(state, inputs["attention_mask"], pooling).cpu().numpy())
    finally:
        model.train(was_training)
    if not per_layer:
        raise ValueError("no batches given")
    return [np.concatenate(store).astype(np.float32) for store in per_layer]


def probe_by_layer(
    train_states: list[np.ndarray],
    train_y: Any,
    val_states: list[np.ndarray],
    val_y: Any,
    seed: int = 0,
    max_iter: int = 1000,
) -> list[dict[str, float | int]]:
    """A standardised logistic-regression probe per layer, fit on train and scored on validation.

    Returns ``[{"layer": i, "accuracy": float, "majority": float}]``; ``majority`` is the validation accuracy
    of always predicting the most frequent train label (the chance line).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_y, val_y = np.asarray(train_y), np.asarray(val_y)
    if len(train_states) != len(val_states):
        raise ValueError(f"train has {len(train_states)} layers but validation has {len(val_states)}")
    classes, counts = np.unique(train_y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"probe needs at least two classes in train_y, found only {classes.tolist()}")
    majority = float(np.mean(val_y == classes[np.argmax(counts)]))
    results: list[dict[str, float | int]] = []
    for layer, (x_train, x_val) in enumerate(zip(train_states, val_states, strict=True)):
        if len(x_train) != len(train_y) or len(x_val) != len(val_y):
            raise ValueError(f"layer {layer}: states and labels have different numbers of examples")
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
        probe.fit(x_train, train_y)
        accuracy = float(np.mean(probe.predict(x_val) == val_y))
        results.append({"layer": layer, "accuracy": accuracy, "majority": majority})
    return results


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between ``(n, d1)`` and ``(n, d2)`` features, centred, float64.

    ``||Yᵀ X||_F² / (||Xᵀ X||_F ||Yᵀ Y||_F)``: 1 for identical features, invariant to orthogonal rotations
    and isotropic scaling. Raises ValueError for constant features (zero denominator).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"need two (n, d) matrices with the same n, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("features contain NaN or inf")
    for name, m in (("x", x), ("y", y)):
        if m.shape[0] < 2 or np.ptp(m, axis=0).max(initial=0.0) == 0.0:
            raise ValueError(f"CKA is undefined: the features of {name} are constant across examples")
    x, y = x - x.mean(0), y - y.mean(0)
    if x.shape[0] < max(x.shape[1], y.shape[1]):  # the n x n Gram form is cheaper
        k, g = x @ x.T, y @ y.T
        numerator, norm_x, norm_y = float((k * g).sum()), np.linalg.norm(k), np.linalg.norm(g)
    else:
        numerator = float(np.linalg.norm(y.T @ x) ** 2)
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    denominator = float(norm_x * norm_y)
    if denominator == 0.0:
        raise ValueError("CKA is undefined: the features are constant across examples")
    return numerator / denominator


def cka_by_layer(base_states: list[np.ndarray], tuned_states: list[np.ndarray]) -> list[dict[str, Any]]:
    """Linear CKA between matching layers of two models: ``[{"layer": i, "cka": float | None}]``.

    A layer whose features are constant across the examples (CKA undefined) gets ``None`` and a
    ``note`` saying so, instead of failing the whole analysis.
    """
    if len(base_states) != len(tuned_states):
        raise ValueError(f"base has {len(base_states)} layers but tuned has {len(tuned_states)}")
    out: list[dict[str, Any]] = []
    for i, (b, t) in enumerate(zip(base_states, tuned_states, strict=True)):
        try:
            out.append({"layer": i, "cka": linear_cka(b, t)})
        except ValueError as exc:
            out.append({"layer": i, "cka": None, "note": str(exc)})
    return out


def _final_norm(model: Any) -> nn.Module:
    """The final norm applied before the output head (Llama ``model.norm``, GPT-2 ``transformer.ln_f``...)."""
    candidates: list[Any] = []
    with contextlib.suppress(Exception):  # some models raise for the generic lookup
        candidates.append(model.get_decoder())
    for attr in (getattr(model, "base_model_prefix", ""), "model", "transformer", "gpt_neox", "decoder"):
        if attr and hasattr(model, attr):
            candidates.append(getattr(model, attr))
    candidates.append(model)
    for holder in list(candidates):
        if isinstance(getattr(holder, "decoder", None), nn.Module):
            candidates.append(holder.decoder)  # OPT: model.decoder.final_layer_norm
    for holder in candidates:
        for name in _NORM_NAMES:
            module = getattr(holder, name, None)
            if isinstance(module, nn.Module):
                return module
    raise ValueError(
        f"no final norm found for model type {getattr(model.config, 'model_type', type(model).__name__)!r}"
    )


def _lens(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """(lens logits (layers+1, seq, vocab), model logits (seq, vocab), attention mask (seq,))."""
    base = _unwrap(model)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    if input_ids.shape[0] != 1:
        raise ValueError(f"the logit lens takes one example (batch size 1), got {input_ids.shape[0]}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = attention_mask.reshape(input_ids.shape)
    norm, head = _final_norm(base), base.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(base).__name__} has no output head (get_output_embeddings() is None)")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            inputs = _prepare(model, {"input_ids": input_ids, "attention_mask": attention_mask}, causal=True)
            outputs, states = _hidden_states(model, inputs)
            logits = outputs.logits[0].float()
            lens = [head(norm(state)) for state in states[:-1]]
            # transformers 5.x ties hidden_states[-1] to last_hidden_state (normed): measure which holds.
            plain, normed = head(states[-1]), head(norm(states[-1]))
            diff_plain = (plain[0].float() - logits).abs().max()
            diff_normed = (normed[0].float() - logits).abs().max()
            lens.append(plain if diff_plain <= diff_normed else normed)
            stacked = torch.cat(lens).float()
    finally:
        model.train(was_training)
    return stacked, logits, inputs["attention_mask"][0]


def lens_logits(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Logit-lens logits for one example: shape ``(layers+1, seq, vocab)``, float32, every position."""
    return _lens(model, input_ids, attention_mask)[0]


def logit_lens(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    top_k: int = 5,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """The logit lens (nostalgebraist 2020) for one example of a causal LM: final norm + head at every layer.

    Returns a JSON-able dict; ``L = layers+1`` (0 = embeddings), ``P`` = the real (unmasked) positions::

        {"layers": L,
         "positions": [int] * P,               # indices into the sequence
         "input_ids": [int] * P, "input_tokens": [str] * P (only with a tokenizer),
         "final_token_ids": [int] * P,         # the model's own top-1 prediction at each position
         "final_tokens": [str] * P (only with a tokenizer),
         "top": [[{"ids": [int] * top_k, "probs": [float] * top_k, "tokens": [str] * top_k (tokenizer)}
                  for each position] for each layer],
         "final_token_prob": [[float] * P] * L,   # probability of final_token_ids at each layer
         "final_token_rank": [[int] * P] * L,     # its rank (0 = top-1) at each layer
         "last_layer_max_abs_diff": float}        # max |lens logits at the last layer - model logits|
    """
    lens, logits, mask = _lens(model, input_ids, attention_mask)
    positions = torch.nonzero(mask.bool()).flatten()
    lens, logits = lens[:, positions], logits[positions]
    ids = input_ids.reshape(-1)[positions.to(input_ids.device)].tolist()
    final_ids = logits.argmax(-1)
    probs = lens.softmax(-1)
    top_probs, top_ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    final_scores = lens.gather(-1, final_ids.expand(lens.shape[0], -1).unsqueeze(-1))
    ranks = (lens > final_scores).sum(-1)
    final_probs = probs.gather(-1, final_ids.expand(lens.shape[0], -1).unsqueeze(-1)).squeeze(-1)

    def tokens(token_ids: list[int]) -> list[str]:
        return [tokenizer.decode([t]) for t in token_ids]

    def entry(ids_: list[int], probs_: list[float]) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": ids_, "probs": probs_}
        return {**out, "tokens": tokens(ids_)} if tokenizer is not None else out

    top = [
        [entry(i, p) for i, p in zip(li, lp, strict=True)]
        for li, lp in zip(top_ids.tolist(), top_probs.tolist(), strict=True)
    ]
    result: dict[str, Any] = {
        "layers": int(lens.shape[0]),
        "positions": positions.tolist(),
        "input_ids": ids,
        "final_token_ids": final_ids.tolist(),
        "top": top,
        "final_token_prob": final_probs.tolist(),
        "final_token_rank": ranks.tolist(),
        "last_layer_max_abs_diff": float((lens[-1] - logits).abs().max()) if len(positions) else 0.0,
    }
    if tokenizer is not None:
        result["input_tokens"] = tokens(ids)
        result["final_tokens"] = tokens(result["final_token_ids"])
    return result
