"""``prompts compare``: score several prompt templates on the validation split and rank them.

Answers (sft): the perplexity of each reference answer given the rendered prompt (pooled over the
answer tokens, lower is better), and ROUGE-L of greedy answers when a generator is given. Labels
(classification with a causal LM): each label string is scored as the continuation and the one
with the highest summed log-probability is the prediction (not length-normalised: every label is
followed by the chat end token, so a label that is a prefix of another is not favoured).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tunelab.generate.config import PromptConfig
from tunelab.generate.prompts import PromptError, cached_embed, few_shot, pairs, render, template_hash
from tunelab.metrics.text import rouge_l_scores
from tunelab.models.scoring import token_logprobs

ANSWER_TASKS = ("sft",)
LABEL_TASKS = ("classification",)
CHAT_END = "<|im_end|>"

GenerateFn = Callable[[list[list[int]]], list[str]]


def end_ids(tokenizer) -> list[int]:
    """The token a chat template puts after an answer (``<|im_end|>``, else eos when the template uses it).

    The same for every template, so answers are scored alike whatever the prompt.
    """
    chat = getattr(tokenizer, "chat_template", None)
    if not chat:
        return []
    chat = str(chat)  # a dict of named templates: look in all of them
    for token in (CHAT_END, tokenizer.eos_token):
        if token and token in chat:
            tid = tokenizer.convert_tokens_to_ids(token)
            if tid is not None and tid != tokenizer.unk_token_id:
                return [int(tid)]
    return []


def _prompts(cfg, where, tokenizer, data, labels, train, seed, embed) -> list[list[int]]:
    """Token ids of every row's prompt; a failure names the template and the row index."""
    k, strategy = cfg.few_shot.k, cfg.few_shot.strategy
    if k and not train:
        raise ValueError(f"{where}: few_shot.k={k} needs train rows to draw examples from")
    out = []
    for i, (inp, _) in enumerate(data):
        try:
            examples = few_shot(train, inp, k, strategy, seed, embed=embed) if k else []
            out.append(render(cfg, tokenizer, inp, examples=examples, labels=labels, where=where).ids)
        except PromptError as e:
            raise PromptError(f"validation row {i}: {e}") from e
    return out


def _answers(model, tokenizer, prompts, data, end, pad_id, batch_size, precision, generate_fn) -> dict:
    answers = [list(tokenizer(out, add_special_tokens=False)["input_ids"]) + end for _, out in data]
    logps = token_logprobs(model, pad_id, prompts, answers, batch_size=batch_size, precision=precision)
    tokens = sum(len(lp) for lp in logps)
    nll = -float(sum(lp.sum() for lp in logps))
    scores: dict[str, Any] = {"answer_perplexity": math.exp(nll / max(tokens, 1)), "answer_tokens": tokens}
    if generate_fn is not None:
        generated = generate_fn(prompts)
        scores["rouge_l"] = float(np.mean(rouge_l_scores(generated, [out for _, out in data])))
    return scores


def _labels(model, tokenizer, prompts, data, labels, end, pad_id, batch_size, precision) -> dict:
    label_ids = [list(tokenizer(lab, add_special_tokens=False)["input_ids"]) + end for lab in labels]
    flat_p = [p for p in prompts for _ in labels]
    flat_c = [c for _ in prompts for c in label_ids]
    logps = token_logprobs(model, pad_id, flat_p, flat_c, batch_size=batch_size, precision=precision)
    sums = np.asarray([lp.sum() for lp in logps]).reshape(len(prompts), len(labels))
    gold = np.asarray([labels.index(out) for _, out in data])
    return {
        "accuracy": float((sums.argmax(1) == gold).mean()),
        "gold_logprob": float(sums[np.arange(len(gold)), gold].mean()),  # breaks accuracy ties
    }


def compare_templates(
    model,
    tokenizer,
    templates: Sequence[PromptConfig],
    rows: Sequence[dict],
    *,
    task: str,
    labels: list[str] | None = None,
    train_rows: Sequence[dict] | None = None,
    seed: int = 0,
    batch_size: int = 8,
    precision: str = "fp32",
    generate_fn: GenerateFn | None = None,
    embed=None,
) -> dict[str, Any]:
    """Score each template on ``rows`` (data-stage rows) and rank them; see the module docstring.

    ``embed`` (texts -> vectors) is for ``few_shot.strategy: similar`` (default MiniLM).
    """
    if task not in ANSWER_TASKS + LABEL_TASKS:
        raise ValueError(f"prompts compare scores tasks {ANSWER_TASKS + LABEL_TASKS}, not {task!r}")
    if not templates:
        raise ValueError("no templates to compare (generate.compare is empty)")
    if not rows:
        raise ValueError("no validation rows to score the templates on")
    data = [pairs(r) for r in rows]
    train = [{"input": i, "output": o} for i, o in map(pairs, train_rows or [])]
    if task in LABEL_TASKS:
        labels = (
            [str(lab) for lab in labels]
            if labels
            else sorted({o for _, o in data} | {t["output"] for t in train})
        )
        missing = sorted({o for _, o in data} - set(labels))
        if missing:
            raise ValueError(f"validation labels {missing} are not among the labels {labels}")
    end = end_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    embed = cached_embed(embed)
    was_training = model.training
    model.eval()
    entries = []
    try:
        for t, cfg in enumerate(templates):
            where = f"template {cfg.name!r} (generate.compare[{t}])"
            prompts = _prompts(cfg, where, tokenizer, data, labels, train, seed, embed)
            if task in LABEL_TASKS:
                scores = _labels(model, tokenizer, prompts, data, labels, end, pad_id, batch_size, precision)
            else:
                scores = _answers(
                    model, tokenizer, prompts, data, end, pad_id, batch_size, precision, generate_fn
                )
            entries.append({"name": cfg.name, "template_hash": template_hash(cfg), "n": len(data), **scores})
    finally:
        model.train(was_training)
    return rank(entries, task, n_rows=len(rows))


def rank(entries: list[dict], task: str, *, n_rows: int) -> dict[str, Any]:
    """The result dict: entries sorted best first (ties: the secondary metric, then input order)."""
    if task in LABEL_TASKS:
        metric, higher, key = "accuracy", True, lambda e: (-e["accuracy"], -e["gold_logprob"])
    else:
        metric, higher, key = "answer_perplexity", False, lambda e: (e["answer_perplexity"],)
    ordered = sorted(entries, key=key)  # sorted() is stable: exact ties keep the recipe's order
    for r, e in enumerate(ordered, start=1):
        e["rank"] = r
    return {"metric": metric, "higher_is_better": higher, "templates": ordered, "n_rows": n_rows}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the ranked templates, best first."""
    metric = result["metric"]
    extra = [
        m for m in ("rouge_l", "gold_logprob", "answer_tokens") if any(m in e for e in result["templates"])
    ]
    header = ["rank", "name", metric, *extra, "n", "hash"]
    lines = [
        [
            str(e["rank"]),
            e["name"],
            _fmt(e[metric]),
            *(_fmt(e.get(m)) for m in extra),
            str(e["n"]),
            e["template_hash"],
        ]
        for e in result["templates"]
    ]
    widths = [max(len(h), *(len(row[c]) for row in lines)) for c, h in enumerate(header)]
    direction = "higher" if result["higher_is_better"] else "lower"
    n, rows = len(lines), result["n_rows"]
    out = [f"{n} templates on {rows} validation rows, ranked by {metric} ({direction} is better)"]
    for row in [header, *lines]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)
