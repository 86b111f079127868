"""Split-level analyses of the explain stage: global importance, surrogate rules, layer-wise views.

Each returns ``None`` (and adds a note saying why) when it does not apply to the model or is off.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np

from tunelab.config import Recipe
from tunelab.explain.choose import row_causal_subject, skip_note
from tunelab.explain.context import Context
from tunelab.explain.registry import get_method
from tunelab.explain.subject import Subject, classifier_subject
from tunelab.runs import RunDir

log = logging.getLogger("tunelab.explain")


def _sample(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    return rows if len(rows) <= n else random.Random(seed).sample(rows, n)


def _subject(ctx: Context, row: dict[str, Any]) -> Subject:
    if ctx.kind == "classifier":
        return classifier_subject(ctx.tokenizer, str(row["text"]), ctx.max_length)
    return row_causal_subject(ctx, row)


def _subjects(ctx: Context, rows: list[dict[str, Any]], what: str, notes: list[str]) -> list[Subject]:
    """The rows that can be attributed; the others (an empty text or answer, an answer that leaves
    no room for its prompt) are skipped, and a note says how many."""
    out, skipped = [], []
    for i, row in enumerate(rows):
        try:
            out.append(_subject(ctx, row))
        except ValueError as exc:
            skipped.append(f"sampled row {i}: {exc}")
    if skipped:
        notes.append(skip_note(what, skipped, len(rows)))
    return out


def global_view(ctx: Context, rows: list[dict[str, Any]], notes: list[str]) -> dict[str, Any] | None:
    """The words that push each predicted class most, over a sample of the split."""
    from tqdm.auto import tqdm

    from tunelab.explain.global_view import global_importance

    g = ctx.cfg.global_importance
    if not g.enabled:
        notes.append("global importance is off (explain.global_importance.enabled)")
        return None
    method = get_method(g.method)
    if ctx.kind not in method.kinds or not method.attribution:
        notes.append(f"global importance: {g.method} cannot attribute a {ctx.kind}")
        return None
    subjects = _subjects(ctx, _sample(rows, g.n, ctx.seed), "global importance", notes)
    if not subjects:
        notes.append("global importance: no example of the split could be attributed")
        return None
    labels = ctx.labels if ctx.kind == "classifier" else ["answer"]
    if ctx.kind == "classifier":
        probs = ctx.predictor.class_scores([s.ids for s in subjects])
        for s, p in zip(subjects, probs, strict=True):
            s.target = int(np.argmax(p))
    examples = []
    for s in tqdm(subjects, desc=f"global ({g.method})", unit="example", leave=False):
        scores = s.word_scores(method.fn(ctx, s).token_scores)
        predicted = labels[s.target] if ctx.kind == "classifier" else "answer"
        examples.append({"predicted": predicted, "words": s.words, "scores": scores.tolist()})
    out = global_importance(examples, labels, method=g.method, top_k=g.top_k, min_count=g.min_count)
    out["n_examples"] = len(examples)
    return out


def rules_view(
    ctx: Context, run_dir: RunDir, rows: list[dict[str, Any]], notes: list[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """A surrogate decision tree on the model's own predictions: rules, fidelity, coverage."""
    from tunelab.explain.rules import fit_rules

    rc = ctx.cfg.rules
    if not rc.enabled:
        notes.append("rules are off (explain.rules.enabled)")
        return None, None
    if ctx.kind != "classifier" or ctx.predictor.output == "identity":
        notes.append("rules: a surrogate tree explains class predictions; this model does not make them")
        return None, None
    train = _sample(run_dir.split_rows("train"), rc.max_train, ctx.seed)
    heldout = _sample(rows, rc.max_heldout, ctx.seed + 1)
    train_texts = [str(r["text"]) for r in train]
    held_texts = [str(r["text"]) for r in heldout]
    p = ctx.predictor
    train_pred = [
        ctx.labels[i] for i in p.class_scores(p.encode_texts(train_texts, ctx.max_length)).argmax(1)
    ]
    held_pred = [ctx.labels[i] for i in p.class_scores(p.encode_texts(held_texts, ctx.max_length)).argmax(1)]
    rules = fit_rules(
        train_texts,
        train_pred,
        held_texts,
        held_pred,
        max_depth=rc.max_depth,
        ngram_max=rc.ngram_max,
        min_samples_leaf=rc.min_samples_leaf,
        seed=ctx.seed,
    )
    return rules.to_json(), rules.to_text()


def layer_view(
    ctx: Context, recipe: Recipe, run_dir: RunDir, subjects: list[Subject], notes: list[str]
) -> dict[str, Any] | None:
    """Probe accuracy per layer, the logit lens (causal LMs) and base-vs-tuned CKA per layer."""
    from tunelab.explain.layers import cka_by_layer, layer_states, logit_lens, probe_by_layer

    lc = ctx.cfg.layers
    if not lc.enabled:
        notes.append("layer-wise analysis is off (explain.layers.enabled)")
        return None
    out: dict[str, Any] = {"probe": None, "cka": None, "logit_lens": None}
    val = _sample(run_dir.split_rows("validation"), lc.max_examples, ctx.seed)
    val_batches = _batches(ctx, val, notes)
    if lc.probe and ctx.kind == "classifier" and ctx.predictor.output == "softmax":
        train = _sample(run_dir.split_rows("train"), lc.max_examples, ctx.seed)
        index = {lab: i for i, lab in enumerate(ctx.labels)}
        try:
            out["probe"] = probe_by_layer(
                layer_states(ctx.model, _batches(ctx, train, notes)),
                [index[str(r["label"])] for r in train],
                layer_states(ctx.model, val_batches),
                [index[str(r["label"])] for r in val],
                seed=ctx.seed,
            )
        except ValueError as exc:
            notes.append(f"probe: {exc}")
    elif lc.probe:
        notes.append("probe: needs class labels (a classification task)")
    if lc.logit_lens and ctx.kind == "causal" and subjects:
        import torch

        ids = torch.tensor([subjects[0].ids], device=ctx.predictor.device)
        out["logit_lens"] = logit_lens(ctx.model, ids, torch.ones_like(ids), tokenizer=ctx.tokenizer)
        out["logit_lens"]["example"] = 0
    if lc.cka and ctx.which == "tuned" and val_batches:
        out["cka"] = _cka(ctx, recipe, val_batches, cka_by_layer, layer_states)
    elif lc.cka:
        notes.append("CKA compares the base and the fine-tuned model: it needs the fine-tuned one")
    return out


def _cka(ctx: Context, recipe: Recipe, batches, cka_by_layer, layer_states) -> list[dict[str, Any]]:
    from tunelab.explain.context import _merged

    tuned = layer_states(ctx.model, batches, pooling="mean")  # a decoder's last token is often the same one
    base, _ = ctx.task.load_base(recipe, ctx.labels if ctx.task.has_labels else None)
    base = _merged(base).eval().to(ctx.predictor.device)
    try:
        return cka_by_layer(layer_states(base, batches, pooling="mean"), tuned)
    finally:
        del base


def _batches(ctx: Context, rows: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """Right-padded batches of the rows' texts (classifiers) or prompts with answers (causal LMs)."""
    import torch

    if ctx.kind == "classifier":
        ids = ctx.predictor.encode_texts([str(r["text"]) for r in rows], ctx.max_length)
    else:
        ids = [s.ids for s in _subjects(ctx, rows, "layer-wise analysis", notes)]
    out = []
    pad = ctx.predictor.pad_id
    for start in range(0, len(ids), ctx.cfg.batch_size):
        chunk = ids[start : start + ctx.cfg.batch_size]
        width = max(len(x) for x in chunk)
        x = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for j, seq in enumerate(chunk):
            x[j, : len(seq)] = torch.tensor(seq)
            mask[j, : len(seq)] = 1
        out.append({"input_ids": x.to(ctx.predictor.device), "attention_mask": mask.to(ctx.predictor.device)})
    return out
