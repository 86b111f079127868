"""Sampling explainers over words: SHAP (Partition explainer, text masker) and LIME (``LimeTextExplainer``).

Both perturb the text a person wrote, word by word, with *our* words as their units (so their
scores line up with every other method's), and score every perturbed text through the shared
predictor in batches. Both libraries come in the optional extra ``tunelab[explain]``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunelab.explain.context import Context
from tunelab.explain.perturbation import spread
from tunelab.explain.registry import Attribution, Method, register
from tunelab.explain.subject import Subject, render_source

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


MASKED = "\ue000"  # LIME's stand-in for a removed word; see _unmask


def text_scores(ctx: Context, subject: Subject, texts: Sequence[str]) -> np.ndarray:
    """(n, outputs) for perturbed versions of ``subject.text``: class outputs, or the answer's
    log-probability as one column (the perturbed turn rendered in the subject's conversation)."""
    p = ctx.predictor
    if ctx.kind == "classifier":
        return p.class_scores(p.encode_texts(texts, ctx.max_length))
    answer = subject.answer_ids
    room = ctx.max_length - len(answer)
    prompts = []
    for text in texts:
        source = render_source(ctx.tokenizer, str(text), ctx.chat, subject.turns, subject.turn)
        ids = ctx.tokenizer(source, add_special_tokens=not ctx.chat)["input_ids"]
        prompts.append(ids[-room:])
    return p.answer_logprobs(prompts, answer).sum(axis=1, keepdims=True)


def visible(subject: Subject) -> tuple[str, list[tuple[int, int]]]:
    """The part of the text the model saw, and the words' spans in it.

    A classifier's text is cut at its end, a causal prompt at its start (what the answer follows is
    kept): the visible part runs from the first kept word to the last, in ``text`` coordinates.
    """
    spans = subject.text_word_spans()
    if not spans:
        return subject.text, []
    lo, hi = spans[0][0], spans[-1][1]
    return subject.text[lo:hi], [(a - lo, b - lo) for a, b in spans]


def visible_text(subject: Subject) -> str:
    return visible(subject)[0]


class WordTokenizer:
    """A tokenizer for SHAP's text masker whose tokens are the model tokenizer's words: the same
    words as :func:`tunelab.explain.subject._words` (special-token strings in the text are none)."""

    def __init__(self, tokenizer, mask_token: str) -> None:
        self.tokenizer = tokenizer
        self.mask_token = mask_token
        self.specials = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}

    def __call__(self, s: str, return_offsets_mapping: bool = True, **_: Any) -> dict[str, list]:
        if s == self.mask_token:  # shap reads the mask token's id from it: one token, though it is special
            return {"input_ids": [1], "offset_mapping": [(0, len(s))]}
        enc = self.tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)
        spans: dict[int, list[int]] = {}
        for tok, wid, (a, b) in zip(enc["input_ids"], enc.word_ids(), enc["offset_mapping"], strict=True):
            if wid is None or tok in self.specials or b <= a:
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


def _column(ctx: Context, subject: Subject) -> int:
    return subject.target if ctx.kind == "classifier" else 0


def shap_values(ctx: Context, subject: Subject) -> Attribution:
    start = time.perf_counter()
    text, _ = visible(subject)
    n, budget, column = len(subject.words), ctx.cfg.shap_max_evals, _column(ctx, subject)
    info: dict[str, Any] = {"max_evals": budget}
    if n <= 1:  # one player: its Shapley value is exactly f(text) - f(masked), no explainer needed
        per_word = np.zeros(n)
        if n:
            both = text_scores(ctx, subject, [text, _mask_string(ctx)])[:, column]
            per_word[0], info["base_value"] = both[0] - both[1], float(both[1])
        info["exact"] = True
        return Attribution("shap", spread(subject, per_word), info, time.perf_counter() - start)
    shap = require("shap")
    masker = shap.maskers.Text(
        WordTokenizer(ctx.tokenizer, _mask_string(ctx)),
        mask_token=_mask_string(ctx),
        collapse_mask_token=False,
    )
    explainer = shap.explainers.Partition(lambda xs: text_scores(ctx, subject, list(xs)), masker)
    np.random.seed(ctx.seed)  # the partition explainer is deterministic; this pins any sampling it does
    exp = explainer([text], max_evals=budget, batch_size=ctx.cfg.batch_size, silent=True)
    values = np.asarray(exp.values[0])
    per_word = values[:, column] if values.ndim == 2 else values
    per_word = _fit(per_word, n, "shap")
    info["base_value"] = float(np.asarray(exp.base_values[0]).ravel()[column])
    if budget < 2 * n + 1:
        info["warning"] = (
            f"explain.shap_max_evals={budget} is below 2 x words + 1 ({2 * n + 1} for {n} words): "
            "the partition explainer stops at groups of words, so its word scores are coarse"
        )
    return Attribution("shap", spread(subject, per_word), info, time.perf_counter() - start)


def _unmask(text: str) -> str:
    """A LIME sample with its removed words dropped: each run of removed words (and the spaces around
    it) becomes one space between its neighbours, so two words never merge into a third."""
    return re.sub(rf"\s*(?:{MASKED}\s*)+", " ", text).strip()


def lime_values(ctx: Context, subject: Subject) -> Attribution:
    start = time.perf_counter()
    text, spans = visible(subject)
    n, budget, column = len(subject.words), ctx.cfg.lime_num_samples, _column(ctx, subject)
    info: dict[str, Any] = {"num_samples": budget}
    if not n:
        return Attribution("lime", spread(subject, np.zeros(0)), info, time.perf_counter() - start)
    lime_text = require("lime.lime_text")
    words = [text[a:b] for a, b in spans]
    # Removed words are dropped (LIME's own default for text), not masked: rows are about half as long.
    explainer = lime_text.LimeTextExplainer(
        split_expression=lambda _: words, bow=False, mask_string=MASKED, random_state=ctx.seed
    )
    exp = explainer.explain_instance(
        text,
        lambda xs: text_scores(ctx, subject, [_unmask(x) for x in xs]),
        labels=(column,),
        num_features=n,
        num_samples=budget,
    )
    per_word = np.zeros(n)
    for feature, weight in exp.as_map()[column]:
        per_word[feature] = weight
    info["score"] = float(exp.score)
    if budget < 2 * n:  # (explain.lime_num_samples is at least 50: config.py)
        info["warning"] = (
            f"explain.lime_num_samples={budget} is below 2 x words ({2 * n} for {n} words): "
            "its linear fit has about as many unknowns as samples, so its word scores are noise-prone"
        )
    return Attribution("lime", spread(subject, per_word), info, time.perf_counter() - start)


def _fit(values: np.ndarray, n: int, what: str) -> np.ndarray:
    if len(values) != n:
        raise RuntimeError(f"{what} returned {len(values)} word scores for {n} words")
    return values.astype(float)


register(Method("shap", shap_values, "SHAP partition explainer over words", extra=EXTRA))
register(Method("lime", lime_values, "LIME text explainer over words (seeded)", extra=EXTRA))
