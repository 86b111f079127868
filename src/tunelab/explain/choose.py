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


def prompt_and_answer(row: dict[str, Any]) -> tuple[str, str]:
    """A chat row's last user turn and the answer that follows; a text row split into two parts."""
    if "messages" in row:
        msgs = row["messages"]
        prompt = next((m["content"] for m in reversed(msgs[:-1]) if m["role"] == "user"), msgs[0]["content"])
        return prompt, msgs[-1]["content"]
    words = str(row.get("text", "")).split()
    cut = max(1, (2 * len(words)) // 3)
    return " ".join(words[:cut]), " " + " ".join(words[cut:])


@torch.no_grad()
def generate_answer(ctx: Context, prompt: str) -> str:
    """The model's greedy answer to ``prompt`` (``max_new_tokens`` at most)."""
    from tunelab.explain.subject import render_prompt

    source, _ = render_prompt(ctx.tokenizer, prompt, ctx.chat)
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


def subject_for(ctx: Context, text: str, answer: str | None = None) -> Subject:
    if ctx.kind == "classifier":
        subject = classifier_subject(ctx.tokenizer, text, ctx.max_length)
        probs = ctx.predictor.class_scores([subject.ids])[0]
        subject.target = int(np.argmax(probs))
        subject.meta["probs"] = probs
        return subject
    source = "given" if answer else "generated"
    answer = answer if answer else generate_answer(ctx, text)
    subject = causal_subject(ctx.tokenizer, text, answer, ctx.max_length, ctx.chat)
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
    confidence, wrong, predicted = _score_rows(ctx, pool)
    queues = {
        "confident": _round_robin(np.argsort(-confidence, kind="stable"), predicted),
        "misclassified": [i for i in np.argsort(-confidence, kind="stable") if wrong[i]]
        if ctx.kind == "classifier"
        else list(np.argsort(confidence, kind="stable")),
        "random": rng.sample(range(len(pool)), len(pool)),
    }
    chosen: list[tuple[int, str]] = []
    taken: set[int] = set()
    while len(chosen) < min(n, len(pool)) and any(queues[s] for s in selectors):
        for s in selectors:
            while queues[s] and int(queues[s][0]) in taken:
                queues[s].pop(0)
            if queues[s] and len(chosen) < n:
                i = int(queues[s].pop(0))
                taken.add(i)
                chosen.append((i, s))
    subjects = []
    for i, source in chosen:
        subject = _row_subject(ctx, pool[i])
        subject.meta.update(source=source, row=indices[i], gold=pool[i].get("label"))
        subjects.append(subject)
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
    prompt, answer = prompt_and_answer(row)
    return subject_for(ctx, prompt, answer)


def _score_rows(ctx: Context, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the model's confidence, whether its prediction is wrong, and the predicted class
    (classifiers; 0 for causal LMs)."""
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
        return scores.max(axis=1), wrong, pred
    confidence = []
    for r in rows:  # each answer differs, so each row is its own forward pass (a bounded sample)
        prompt, answer = prompt_and_answer(r)
        s = causal_subject(ctx.tokenizer, prompt, answer, ctx.max_length, ctx.chat)
        confidence.append(float(p.answer_logprobs([s.prompt_ids], s.answer_ids)[0].mean()))
    return np.array(confidence), np.zeros(len(rows), bool), np.zeros(len(rows), int)
