"""Counterfactual fairness: each text beside its demographic swaps, scored in batches by one model.

Classifiers: the label-flip rate (the predicted class changes) and the mean shift of the
originally predicted class's probability, per category, with bootstrap intervals. Causal LMs: the
change in a stated continuation's log-likelihood per token when only the prompt's terms change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.metrics.bootstrap import bootstrap_mean

if TYPE_CHECKING:
    from tunelab.tasks.windows import LongText


@dataclass(frozen=True)
class Pair:
    row: int  # index of the original text
    category: str
    source_group: str
    target_group: str
    original: str
    swapped: str


def build_pairs(texts: list[str], lists: dict[str, Any]) -> list[Pair]:
    """Every counterfactual of every text, for each category's swap list."""
    from tunelab.audit.counterfactual import counterfactuals

    pairs = []
    for i, text in enumerate(texts):
        for category, swaps in lists.items():
            for cf in counterfactuals(text, swaps):
                pairs.append(Pair(i, category, cf.source_group, cf.target_group, text, cf.text))
    return pairs


def classifier_scores(
    model, tokenizer, texts: list[str], pairs: list[Pair], settings: LongText | int, batch_size: int
):
    """(probabilities of the originals, probabilities of the swaps), one batched pass over both;
    ``settings``: how a text longer than max_length is read (an int: truncated to it)."""
    from tunelab.audit.scoring import class_probs

    probs = class_probs(model, tokenizer, [*texts, *(p.swapped for p in pairs)], settings, batch_size)
    return probs[: len(texts)], probs[len(texts) :]


def classifier_figures(
    pairs: list[Pair], original: np.ndarray, swapped: np.ndarray, labels: list[str], cfg, seed: int, top: int
) -> dict[str, Any]:
    """Per category: flip rate and mean probability shift with intervals, and the most affected swaps."""
    pred = original.argmax(1)
    out: dict[str, Any] = {}
    for category in dict.fromkeys(p.category for p in pairs):
        idx = np.array([k for k, p in enumerate(pairs) if p.category == category])
        rows = np.array([pairs[k].row for k in idx])
        flips = (swapped[idx].argmax(1) != pred[rows]).astype(float)
        shift = swapped[idx, pred[rows]] - original[rows, pred[rows]]
        worst = idx[np.argsort(-np.abs(shift))[:top]]
        out[category] = {
            "n_pairs": len(idx),
            "flip_rate": bootstrap_mean(flips, cfg.bootstrap_samples, cfg.confidence, seed),
            "mean_shift": bootstrap_mean(np.abs(shift), cfg.bootstrap_samples, cfg.confidence, seed),
            "signed_shift": float(shift.mean()),
            "by_direction": _by_direction(pairs, idx, flips),
            "examples": [
                {
                    "original": pairs[k].original,
                    "swapped": pairs[k].swapped,
                    "groups": f"{pairs[k].source_group} -> {pairs[k].target_group}",
                    "predicted": labels[int(pred[pairs[k].row])],
                    "predicted_after": labels[int(swapped[k].argmax())],
                    "probability": float(original[pairs[k].row, pred[pairs[k].row]]),
                    "probability_after": float(swapped[k, pred[pairs[k].row]]),
                }
                for k in worst
            ],
        }
    return out


def causal_figures(
    pairs: list[Pair],
    original: np.ndarray,
    swapped: np.ndarray,
    continuations: list[str],
    cfg,
    seed: int,
    top: int,
) -> dict[str, Any]:
    """Per category: mean |change| of the continuation's log-likelihood per token, and its signed mean."""
    out: dict[str, Any] = {}
    for category in dict.fromkeys(p.category for p in pairs):
        idx = np.array([k for k, p in enumerate(pairs) if p.category == category])
        rows = np.array([pairs[k].row for k in idx])
        delta = swapped[idx] - original[rows]
        keep = np.isfinite(delta)
        idx, delta = idx[keep], delta[keep]
        worst = idx[np.argsort(-np.abs(delta))[:top]]
        out[category] = {
            "n_pairs": len(idx),
            "logprob_shift": bootstrap_mean(np.abs(delta), cfg.bootstrap_samples, cfg.confidence, seed),
            "signed_shift": float(delta.mean()) if len(delta) else None,
            "examples": [
                {
                    "original": pairs[k].original,
                    "swapped": pairs[k].swapped,
                    "groups": f"{pairs[k].source_group} -> {pairs[k].target_group}",
                    "continuation": continuations[pairs[k].row],
                    "logprob": float(original[pairs[k].row]),
                    "logprob_after": float(swapped[k]),
                }
                for k in worst
            ],
        }
    return out


def _by_direction(pairs: list[Pair], idx: np.ndarray, flips: np.ndarray) -> dict[str, dict[str, float]]:
    """Flip rate of each swap direction (male -> female, female -> male...)."""
    names = [f"{pairs[k].source_group} -> {pairs[k].target_group}" for k in idx]
    out = {}
    for name in dict.fromkeys(names):
        mask = np.array([n == name for n in names])
        out[name] = {"n_pairs": int(mask.sum()), "flip_rate": float(flips[mask].mean())}
    return out
