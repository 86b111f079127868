"""How far each explanation can be believed on this model.

ERASER-style (DeYoung et al., 2020) area over the perturbation curve, on words:
- comprehensiveness: f(x) - f(x without its top-k% words), averaged over k (higher: the words the
  method ranks first really carry the prediction);
- sufficiency: f(x) - f(only its top-k% words) (lower: those words alone are enough).
A random ordering of the words, averaged over a few seeded draws, is the baseline every method must
beat. Rank agreement between methods is Kendall's tau over the words of each example.
For a causal LM, f is the answer's log-probability, so both figures are in nats.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np

from tunelab.explain.context import Context
from tunelab.explain.subject import Subject

RANDOM = "random"


def top_k_sizes(n_words: int, fractions: list[float]) -> list[int]:
    """Words removed or kept at each fraction: at least one, at most all."""
    return [min(n_words, max(1, math.ceil(f * n_words))) for f in fractions]


def curves(ctx: Context, subject: Subject, rankings: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Comprehensiveness and sufficiency of each ranking (word scores) of ``subject``, in one batch."""
    n = len(subject.words)
    sizes = top_k_sizes(n, ctx.cfg.fractions)
    variants: list[list[int]] = [subject.prompt_ids]
    for scores in rankings.values():
        order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
        for k in sizes:
            variants.append(subject.without_words(order[:k]))
            variants.append(subject.only_words(order[:k]))
    values = ctx.predictor.scores(variants, target=subject.target, answer=subject.answer_ids)
    full, rest = float(values[0]), values[1:]
    out = {}
    for i, name in enumerate(rankings):
        block = rest[i * 2 * len(sizes) : (i + 1) * 2 * len(sizes)]
        removed, kept = block[0::2], block[1::2]
        out[name] = {
            "comprehensiveness": _mean(full - removed),
            "sufficiency": _mean(full - kept),
            "by_k": [
                {"k": k, "removed": float(r), "kept": float(s)}
                for k, r, s in zip(sizes, removed, kept, strict=True)
            ],
        }
    return out


def _mean(x: np.ndarray) -> float:
    """The mean over the finite values: a variant with no prompt token left has no score (NaN)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def random_rankings(subject: Subject, repeats: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"{RANDOM}{r}": rng.permutation(len(subject.words)).astype(float) for r in range(repeats)}


def example_faithfulness(
    ctx: Context, subject: Subject, word_scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Per method (and the random baseline): comprehensiveness and sufficiency for one example."""
    if not subject.words:
        return {}
    randoms = random_rankings(subject, ctx.cfg.random_repeats, ctx.seed)
    got = curves(ctx, subject, {**word_scores, **randoms})
    result = {name: got[name] for name in word_scores}
    result[RANDOM] = {
        "comprehensiveness": float(np.mean([got[r]["comprehensiveness"] for r in randoms])),
        "sufficiency": float(np.mean([got[r]["sufficiency"] for r in randoms])),
    }
    return result


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float | None:
    """Kendall's tau-b between two word scorings (None when either is constant or too short)."""
    from scipy.stats import kendalltau

    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    tau = kendalltau(a, b).statistic
    return None if np.isnan(tau) else float(tau)


def summarise(per_example: list[dict[str, Any]], word_scores: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Mean figures per method over the examples, the share of examples where a method beats random,
    and the mean pairwise rank agreement."""
    methods = sorted({m for ex in per_example for m in ex if m != RANDOM})
    table = {}
    for m in [*methods, RANDOM]:
        rows = [ex[m] for ex in per_example if m in ex]
        if not rows:
            continue
        entry = {
            "comprehensiveness": float(np.mean([r["comprehensiveness"] for r in rows])),
            "sufficiency": float(np.mean([r["sufficiency"] for r in rows])),
            "n_examples": len(rows),
        }
        if m != RANDOM:
            wins = [
                ex[m]["comprehensiveness"] > ex[RANDOM]["comprehensiveness"] for ex in per_example if m in ex
            ]
            entry["beats_random"] = float(np.mean(wins))
        table[m] = entry
    agreement = []
    for a, b in combinations(methods, 2):
        taus = [
            t for ws in word_scores if a in ws and b in ws if (t := kendall_tau(ws[a], ws[b])) is not None
        ]
        agreement.append(
            {"a": a, "b": b, "kendall_tau": float(np.mean(taus)) if taus else None, "n": len(taus)}
        )
    return {"methods": table, "agreement": agreement}
