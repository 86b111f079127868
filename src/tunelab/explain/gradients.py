"""Gradient attributions through captum on the token-embedding layer.

- ``integrated_gradients``: ``LayerIntegratedGradients`` from a same-length baseline (every word
  token replaced by padding; special and template tokens kept), ``internal_batch_size`` rows per
  pass, with captum's convergence delta (completeness: the scores sum to f(x) - f(baseline) up
  to it).
- ``gradient_x_input``: gradient times the embedding, summed over the hidden size.
- ``saliency``: the L2 norm of the gradient at each token's embedding (unsigned).

For a classifier, f is the target class's logit: a confident model's softmax is saturated, so the
gradient of its probability is close to zero and gradient x input would rank noise (perturbation
methods and faithfulness use the probability, which does not saturate their differences). For a
causal LM, f is the answer's total log-probability given the prompt. Integrated gradients
and gradient x input also give the per-answer-token matrix (answer token x prompt token).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from tunelab.explain.context import Context
from tunelab.explain.registry import Attribution, Method, register
from tunelab.explain.subject import NO_WORD, Subject


def _inputs(ctx: Context, subject: Subject) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([subject.ids], dtype=torch.long, device=ctx.predictor.device)
    return ids, torch.ones_like(ids)


def baseline_ids(ctx: Context, subject: Subject) -> list[int]:
    """The same-length baseline: word tokens become padding; special, template and answer tokens stay."""
    pad = ctx.predictor.pad_id
    return [
        pad if i < subject.n_prompt and w != NO_WORD else t
        for i, (t, w) in enumerate(zip(subject.ids, subject.word_of, strict=True))
    ]


def forward_fn(ctx: Context, subject: Subject, answer_token: int | None = None, logits: bool = True):
    """f(ids, mask) for captum: class logits (or outputs), or the answer's log-probability (total or
    one answer token)."""
    p = ctx.predictor
    n_answer = len(subject.answer_ids)

    def f(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if ctx.kind == "classifier":
            return p.forward_logits(ids, mask) if logits else p.forward_probs(ids, mask)
        lp = p.forward_answer(ids, mask, n_answer)
        return lp.sum(-1, keepdim=True) if answer_token is None else lp[:, answer_token : answer_token + 1]

    return f


def _target(ctx: Context, subject: Subject) -> int:
    return subject.target if ctx.kind == "classifier" else 0


def integrated_gradients(ctx: Context, subject: Subject) -> Attribution:
    from captum.attr import LayerIntegratedGradients

    start = time.perf_counter()
    ids, mask = _inputs(ctx, subject)
    base = torch.tensor([baseline_ids(ctx, subject)], dtype=torch.long, device=ids.device)
    steps = ctx.cfg.ig_steps
    lig = LayerIntegratedGradients(forward_fn(ctx, subject), ctx.embeddings())
    attr, delta = lig.attribute(
        ids,
        baselines=base,
        additional_forward_args=(mask,),
        target=_target(ctx, subject),
        n_steps=steps,
        internal_batch_size=min(steps, ctx.cfg.batch_size),
        return_convergence_delta=True,
    )
    scores = attr.sum(-1)[0].detach().float().cpu().numpy()
    info = {"convergence_delta": float(delta.abs().max()), "n_steps": steps}
    with torch.no_grad():
        f = forward_fn(ctx, subject)
        t = _target(ctx, subject)
        info["f_input"] = float(f(ids, mask)[0, t])
        info["f_baseline"] = float(f(base, mask)[0, t])
    return Attribution("integrated_gradients", scores, info, time.perf_counter() - start)


def _grad_x(ctx: Context, subject: Subject, multiply: bool, answer_token: int | None = None) -> np.ndarray:
    from captum.attr import LayerGradientXActivation

    ids, mask = _inputs(ctx, subject)
    method = LayerGradientXActivation(
        forward_fn(ctx, subject, answer_token), ctx.embeddings(), multiply_by_inputs=multiply
    )
    attr = method.attribute(ids, additional_forward_args=(mask,), target=_target(ctx, subject))
    attr = attr[0].detach().float()
    return (attr.sum(-1) if multiply else attr.norm(dim=-1)).cpu().numpy()


def per_answer_token(ctx: Context, subject: Subject) -> list[list[float]]:
    """Causal LMs: gradient x input of each answer token's log-probability on every prompt token."""
    return [
        _grad_x(ctx, subject, True, t)[: subject.n_prompt].round(6).tolist()
        for t in range(len(subject.answer_ids))
    ]


def gradient_x_input(ctx: Context, subject: Subject) -> Attribution:
    start = time.perf_counter()
    scores = _grad_x(ctx, subject, True)
    info = {}
    if ctx.kind == "causal":
        info["per_answer_token"] = per_answer_token(ctx, subject)
    return Attribution("gradient_x_input", scores, info, time.perf_counter() - start)


def saliency(ctx: Context, subject: Subject) -> Attribution:
    start = time.perf_counter()
    return Attribution("saliency", _grad_x(ctx, subject, False), {}, time.perf_counter() - start)


register(
    Method("integrated_gradients", integrated_gradients, "captum LayerIntegratedGradients on the embeddings")
)
register(
    Method("gradient_x_input", gradient_x_input, "gradient times embedding, summed over the hidden size")
)
register(Method("saliency", saliency, "L2 norm of the gradient at each token embedding (unsigned)"))
