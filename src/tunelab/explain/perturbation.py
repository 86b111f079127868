"""Occlusion over words (captum ``FeatureAblation``): a word's score is how much the explained
quantity falls when all of its tokens are replaced by the mask token. Every word is one feature;
the ablated copies go through the shared predictor, ``batch_size`` of them per forward pass."""

from __future__ import annotations

import time

import numpy as np
import torch

from tunelab.explain.context import Context
from tunelab.explain.gradients import forward_fn
from tunelab.explain.registry import Attribution, Method, register
from tunelab.explain.subject import NO_WORD, Subject


def word_groups(subject: Subject) -> tuple[torch.Tensor, int]:
    """captum feature mask: word i is group i; every other token shares one last group."""
    n = len(subject.words)
    groups = [w if w != NO_WORD else n for w in subject.word_of]
    return torch.tensor([groups], dtype=torch.long), n + 1


def spread(subject: Subject, per_word: np.ndarray) -> np.ndarray:
    """Token scores whose per-word sums are ``per_word`` (a word's value split over its tokens)."""
    counts = np.bincount([w for w in subject.word_of if w != NO_WORD], minlength=len(subject.words))
    return np.array([per_word[w] / counts[w] if w != NO_WORD else 0.0 for w in subject.word_of])


def occlusion(ctx: Context, subject: Subject) -> Attribution:
    from captum.attr import FeatureAblation

    start = time.perf_counter()
    ids = torch.tensor([subject.ids], dtype=torch.long, device=ctx.predictor.device)
    mask = torch.ones_like(ids)
    groups, n_groups = word_groups(subject)
    target = subject.target if ctx.kind == "classifier" else 0
    with torch.no_grad():
        attr = FeatureAblation(forward_fn(ctx, subject, logits=False)).attribute(
            ids,
            baselines=ctx.mask_id,
            additional_forward_args=(mask,),
            target=target,
            feature_mask=groups.to(ids.device),
            perturbations_per_eval=max(1, min(n_groups, ctx.cfg.batch_size)),
        )
    token_values = attr[0].float().cpu().numpy()
    per_word = np.zeros(len(subject.words))
    for i, w in enumerate(subject.word_of):
        if w != NO_WORD:
            per_word[w] = token_values[i]  # every token of a word carries the word's value
    return Attribution(
        "occlusion", spread(subject, per_word), {"baseline_token": ctx.mask_id}, time.perf_counter() - start
    )


register(Method("occlusion", occlusion, "fall of the explained output when a word is masked (captum)"))
