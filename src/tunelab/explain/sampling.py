"""Sampling explainers over words: SHAP (Partition explainer, text masker) and LIME (``LimeTextExplainer``).

Both perturb the text a person wrote, word by word, with *our* words as their units (so their
scores line up with every other method's), and score every perturbed text through the shared
predictor in batches. Both libraries come in the optional extra ``tunelab[explain]``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunelab.explain.context import Context
from tunelab.explain.perturbation import spread
from tunelab.explain.registry import Attribution, Method, register
from tunelab.explain.subject import Subject, render_prompt

EXTRA = "explain"


def require(module: str) -> Any:
    """Import an optional library, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the {module.split('.')[0]} method needs the optional extra: pip install 'tunelab[{EXTRA}]'"
        ) from exc


def text_scores(ctx: Context, subject: Subject, texts: Sequence[str]) -> np.ndarray:
    """(n, outputs) for perturbed versions of ``subject.text``: class outputs, or the answer's
    log-probability as one column."""
    p = ctx.predictor
    if ctx.kind == "classifier":
        return p.class_scores(p.encode_texts(texts, ctx.max_length))
    answer = subject.answer_ids
    room = ctx.max_length - len(answer)
    prompts = []
    for text in texts:
        source, _ = render_prompt(ctx.tokenizer, str(text), ctx.chat)
        ids = ctx.tokenizer(source, add_special_tokens=not ctx.chat)["input_ids"]
        prompts.append(ids[-room:])
    return p.answer_logprobs(prompts, answer).sum(axis=1, keepdims=True)


def visible_text(subject: Subject) -> str:
    """The part of the text the model saw (a truncated text is explained on its kept words)."""
    spans = subject.text_word_spans()
    return subject.text[: spans[-1][1]] if spans else subject.text


class WordTokenizer:
    """A tokenizer for SHAP's text masker whose tokens are the model tokenizer's words."""

    def __init__(self, tokenizer, mask_token: str) -> None:
        self.tokenizer = tokenizer
        self.mask_token = mask_token

    def __call__(self, s: str, return_offsets_mapping: bool = True, **_: Any) -> dict[str, list]:
        enc = self.tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)
        spans: dict[int, list[int]] = {}
        for wid, (a, b) in zip(enc.word_ids(), enc["offset_mapping"], strict=True):
            if wid is None or b <= a:
                continue
            span = spans.setdefault(wid, [a, b])
            span[0], span[1] = min(span[0], a), max(span[1], b)
        offsets = []
        for a, b in spans.values():
            piece = s[a:b]
            offsets.append((a + len(piece) - len(piece.lstrip()), b - len(piece) + len(piece.rstrip())))
        out: dict[str, list] = {"input_ids": list(range(1, len(offsets) + 1))}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets
        return out


def _mask_string(ctx: Context) -> str:
    return ctx.tokenizer.mask_token or "..."


def shap_values(ctx: Context, subject: Subject) -> Attribution:
    shap = require("shap")
    start = time.perf_counter()
    text = visible_text(subject)
    masker = shap.maskers.Text(
        WordTokenizer(ctx.tokenizer, _mask_string(ctx)),
        mask_token=_mask_string(ctx),
        collapse_mask_token=False,
    )
    explainer = shap.explainers.Partition(lambda xs: text_scores(ctx, subject, list(xs)), masker)
    np.random.seed(ctx.seed)  # the partition explainer is deterministic; this pins any sampling it does
    exp = explainer([text], max_evals=ctx.cfg.shap_max_evals, batch_size=ctx.cfg.batch_size, silent=True)
    values = np.asarray(exp.values[0])
    column = subject.target if ctx.kind == "classifier" else 0
    per_word = values[:, column] if values.ndim == 2 else values
    per_word = _fit(per_word, len(subject.words), "shap")
    info = {
        "max_evals": ctx.cfg.shap_max_evals,
        "base_value": float(np.asarray(exp.base_values[0]).ravel()[column]),
    }
    return Attribution("shap", spread(subject, per_word), info, time.perf_counter() - start)


def lime_values(ctx: Context, subject: Subject) -> Attribution:
    lime_text = require("lime.lime_text")
    start = time.perf_counter()
    text = visible_text(subject)
    words = [text[a:b] for a, b in subject.text_word_spans()]
    # Removed words are dropped (LIME's own default for text), not masked: rows are about half as long.
    explainer = lime_text.LimeTextExplainer(
        split_expression=lambda _: words, bow=False, mask_string="", random_state=ctx.seed
    )
    column = subject.target if ctx.kind == "classifier" else 0
    exp = explainer.explain_instance(
        text,
        lambda xs: text_scores(ctx, subject, xs),
        labels=(column,),
        num_features=len(words),
        num_samples=ctx.cfg.lime_num_samples,
    )
    per_word = np.zeros(len(subject.words))
    for feature, weight in exp.as_map()[column]:
        per_word[feature] = weight
    info = {"num_samples": ctx.cfg.lime_num_samples, "score": float(exp.score)}
    return Attribution("lime", spread(subject, per_word), info, time.perf_counter() - start)


def _fit(values: np.ndarray, n: int, what: str) -> np.ndarray:
    if len(values) != n:
        raise RuntimeError(f"{what} returned {len(values)} word scores for {n} words")
    return values.astype(float)


register(Method("shap", shap_values, "SHAP partition explainer over words", extra=EXTRA))
register(Method("lime", lime_values, "LIME text explainer over words (seeded)", extra=EXTRA))
