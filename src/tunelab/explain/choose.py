"""Which examples to explain: the texts given, then picks from the split in turn
(most confident, misclassified, random with the run's seed).

For a causal LM an example is a prompt with an answer: the split's reference answer, an answer from
the recipe, or (for a text given alone) the model's own greedy answer. "Confident" then means the
answer the model finds most likely per token, and "misclassified" the least likely.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from tunelab.explain.context import Context
from tunelab.explain.subject import Subject, causal_subject, classifier_subject

MAX_SCORED = {"classifier": 2000, "causal": 200}  # split rows scored to find confident/misclassified ones


def prompt_and_answer(row: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], int]:
    """A row's explained prompt, its answer, the conversation before the answer and the explained
    turn's index in it: for a chat row the last user turn of ``messages[:-1]`` (system and earlier
    turns stay in the conversation, as the model was trained on them); a text row split in two."""
    if "messages" in row:
        msgs = list(row["messages"])
        before = msgs[:-1] or msgs[:1]
        turn = next((i for i in reversed(range(len(before))) if before[i]["role"] == "user"), 0)
        return str(before[turn]["content"]), str(msgs[-1]["content"]), before, turn
    words = str(row.get("text", "")).split()
    cut = max(1, (2 * len(words)) // 3)
    return " ".join(words[:cut]), " " + " ".join(words[cut:]), [], -1


def row_causal_subject(ctx: Context, row: dict[str, Any]) -> Subject:
    """A split row of a causal LM as a subject with its reference answer (ValueError if it has none
    to attribute, or no room for it)."""
    prompt, answer, turns, turn = prompt_and_answer(row)
    return causal_subject(ctx.tokenizer, prompt, answer, ctx.max_length, ctx.chat, turns, turn)


def skip_note(what: str, skipped: list[str], total: int) -> str:
    """One line for rows that could not be explained (with the first reason)."""
    return f"{what}: {len(skipped)} of {total} rows skipped (e.g. {skipped[0]})"


@torch.no_grad()
def generate_answer(ctx: Context, prompt: str) -> str:
    """The model's greedy answer to ``prompt`` (``max_new_tokens`` at most)."""
    from tunelab.explain.subject import render_source

    source = render_source(ctx.tokenizer, prompt, ctx.chat)
    ids = ctx.tokenizer(source, add_special_tokens=not ctx.chat, return_tensors="pt")["input_ids"]
    ids = ids.to(ctx.predictor.device)
    with ctx.predictor.autocast():
        out = ctx.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=ctx.cfg.max_new_tokens,
            do_sample=False,
            pad_token_id=ctx.tokenizer.pad_token_id,
        )
    return ctx.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def subject_for(ctx: Context, text: str, answer: str | None = None, turns=(), turn: int = -1) -> Subject:
    if ctx.kind == "classifier":
        subject = classifier_subject(ctx.tokenizer, text, ctx.max_length)
        probs = ctx.predictor.class_scores([subject.ids])[0]
        subject.target = int(np.argmax(probs))
        subject.meta["probs"] = probs
        return subject
    source = "given" if answer else "generated"
    answer = answer if answer else generate_answer(ctx, text)
    subject = causal_subject(ctx.tokenizer, text, answer, ctx.max_length, ctx.chat, turns, turn)
    subject.meta["answer_source"] = source
    return subject


def given(ctx: Context, texts: list[str], answers: list[str]) -> list[Subject]:
    out = []
    for i, text in enumerate(texts):
        subject = subject_for(ctx, text, answers[i] if i < len(answers) else None)
        subject.meta["source"] = "given"
        out.append(subject)
    return out


def from_split(ctx: Context, rows: list[dict[str, Any]], n: int, selectors: list[str]) -> list[Subject]:
    """``n`` examples from ``rows``, taking from each selector in turn (no example twice)."""
    if n <= 0 or not rows:
        return []
    rng = random.Random(ctx.seed)
    limit = MAX_SCORED[ctx.kind]
    indices = list(range(len(rows))) if len(rows) <= limit else sorted(rng.sample(range(len(rows)), limit))
    pool = [rows[i] for i in indices]
    confidence, wrong, predicted, skipped = _score_rows(ctx, pool)
    usable = np.isfinite(confidence)
    by_confidence = [i for i in np.argsort(-confidence, kind="stable") if usable[i]]
    queues = {
        "confident": _round_robin(np.array(by_confidence, dtype=int), predicted),
        "misclassified": [i for i in by_confidence if wrong[i]]
        if ctx.kind == "classifier"
        else [i for i in np.argsort(confidence, kind="stable") if usable[i]],
        "random": [i for i in rng.sample(range(len(pool)), len(pool)) if usable[i]],
    }
    subjects: list[Subject] = []
    taken: set[int] = set()
    while len(subjects) < n and any(queues[s] for s in selectors):
        for s in selectors:
            while queues[s] and int(queues[s][0]) in taken:
                queues[s].pop(0)
            if queues[s] and len(subjects) < n:
                i = int(queues[s].pop(0))
                taken.add(i)
                try:  # one row that cannot be explained (no room for its answer, empty) is skipped
                    subject = _row_subject(ctx, pool[i])
                except ValueError as exc:
                    skipped.append((i, str(exc)))
                    continue
                subject.meta.update(source=s, row=indices[i], gold=pool[i].get("label"))
                subjects.append(subject)
    if skipped:
        reasons = [f"row {indices[i]}: {why}" for i, why in skipped]
        ctx.warnings.append(skip_note("examples of the split", reasons, len(pool)))
    return subjects


def _round_robin(order: np.ndarray, groups: np.ndarray) -> list[int]:
    """``order`` interleaved by group: the most confident of each predicted class, then the next..."""
    by_group: dict[int, list[int]] = {}
    for i in order:
        by_group.setdefault(int(groups[i]), []).append(int(i))
    out: list[int] = []
    queues = list(by_group.values())
    while any(queues):
        out += [q.pop(0) for q in queues if q]
    return out


def _row_subject(ctx: Context, row: dict[str, Any]) -> Subject:
    if ctx.kind == "classifier":
        return subject_for(ctx, str(row["text"]))
    prompt, answer, turns, turn = prompt_and_answer(row)
    return subject_for(ctx, prompt, answer, turns, turn)


def _score_rows(
    ctx: Context, rows: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Per row: the model's confidence (NaN for a row that cannot be explained), whether its
    prediction is wrong, the predicted class (classifiers; 0 for causal LMs), and why rows were
    skipped."""
    p = ctx.predictor
    if ctx.kind == "classifier":
        scores = p.class_scores(p.encode_texts([str(r["text"]) for r in rows], ctx.max_length))
        pred = scores.argmax(axis=1)
        index = {lab: i for i, lab in enumerate(ctx.labels)}
        gold = np.array([index.get(str(r.get("label")), -1) for r in rows])
        wrong = (
            (gold >= 0) & (pred != gold)
            if len(ctx.labels) > 1 and p.output == "softmax"
            else np.zeros(len(rows), bool)
        )
        return scores.max(axis=1), wrong, pred, []
    confidence: list[float] = []
    skipped: list[tuple[int, str]] = []
    for i, r in enumerate(
        rows
    ):  # each answer differs, so each row is its own forward pass (a bounded sample)
        try:
            s = row_causal_subject(ctx, r)
        except ValueError as exc:
            skipped.append((i, str(exc)))
            confidence.append(float("nan"))
            continue
        confidence.append(float(p.answer_logprobs([s.prompt_ids], s.answer_ids)[0].mean()))
    return np.array(confidence), np.zeros(len(rows), bool), np.zeros(len(rows), int), skipped
