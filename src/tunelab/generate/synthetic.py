"""Synthetic rows from seed examples, self-instruct style (Wang et al. 2022), each with its provenance.

``instruction``: a prompt shows a few random seed pairs and asks for one new ``Question:/Answer:``
pair. ``labeled``: for each class in turn, a prompt shows seed texts of that class and asks for one
more. Every candidate then passes the filters of :mod:`tunelab.generate.synthetic_filters` in order
(empty, parse, length, exact duplicate, near duplicate, ROUGE-L, label), against the seeds, the
protected evaluation rows and the rows kept so far. The model calls are injected: ``generate_fn``
(rendering, decoding and batching are the caller's) and ``classify_fn`` (the run's classifier).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.generate import synthetic_filters as sf
from tunelab.generate.config import SyntheticConfig
from tunelab.generate.prompts import pairs, render_text
from tunelab.runs import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl

Generate = Callable[[list[str], int], list[str]]
Classify = Callable[[list[str]], list[str]]

KINDS = ("instruction", "labeled")
MIN_CANDIDATES = 4  # a round asks for at least this many (labeled: 2 per class still short)
DEFAULT_TEMPLATES = {
    "instruction": (
        "Here are examples of tasks, each a question and its answer.\n"
        "{% for ex in examples %}\nQuestion: {{ ex.input }}\nAnswer: {{ ex.output }}\n{% endfor %}\n"
        "Write one new task of the same kind, different from the examples. "
        "Reply in exactly this format:\nQuestion: <the new question>\nAnswer: <its answer>"
    ),
    "labeled": (
        'Here are examples of texts of the class "{{ label }}" (the classes: {{ labels | join(", ") }}).\n'
        "{% for ex in examples %}\nText: {{ ex.input }}\n{% endfor %}\n"
        'Write one new text of the class "{{ label }}", different from the examples. '
        "Reply in exactly this format:\nText: <the new text>"
    ),
}


def resolve_kind(kind: str, task: str) -> str:
    """``auto`` -> ``instruction`` for sft/lm, ``labeled`` for classification."""
    if kind != "auto":
        return kind
    if task in ("sft", "lm"):
        return "instruction"
    if task == "classification":
        return "labeled"
    raise ValueError(
        f"generate.synthetic.kind: auto has no kind for task {task!r}; set instruction or labeled"
    )


def resolve_template(kind: str, cfg: SyntheticConfig, template: str | None = None) -> str:
    """The generation prompt's Jinja2 text: ``template``, else ``cfg.template``, else the default."""
    return template or cfg.template or DEFAULT_TEMPLATES[kind]


def seed_example(row: dict[str, Any], kind: str) -> dict[str, str]:
    """``{input, output}`` of a seed row: chat, prompt/response, instruction/output, or text + label."""
    if kind == "labeled":
        if not isinstance(row.get("text"), str) or not isinstance(row.get("label"), str | int):
            raise ValueError(f"a labeled seed needs text and a single label (keys: {sorted(row)})")
        return {"input": row["text"], "output": str(row["label"])}
    if "messages" in row:
        question, answer = pairs(row)
    elif "prompt" in row:
        question, answer = row["prompt"], row.get("response", "")
    elif "instruction" in row:
        extra = row.get("input")
        question = f"{row['instruction']}\n\n{extra}" if extra else row["instruction"]
        answer = row.get("output", "")
    else:
        raise ValueError(
            f"an instruction seed needs messages, prompt/response or instruction/output ({sorted(row)})"
        )
    if not question or not answer:
        raise ValueError(f"an instruction seed needs a question and an answer: {row!r:.120}")
    return {"input": question, "output": answer}


def protected_texts(rows: list[dict[str, Any]]) -> list[str]:
    """What synthetic rows must not repeat of data-stage rows: a text, or a prompt and prompt + answer."""
    out: list[str] = []
    for row in rows:
        if "messages" in row:
            question, answer = pairs(row)
            out += [question, f"{question}\n{answer}"]
        else:
            out.append(row["text"])
    return out


def load_seeds(cfg: SyntheticConfig, train_path: Path) -> list[dict[str, Any]]:
    """The seed rows: ``cfg.seeds`` (a JSONL file) if set, else the run's train split."""
    return read_jsonl(Path(cfg.seeds) if cfg.seeds else train_path)


@dataclass
class SyntheticResult:
    rows: list[dict[str, Any]]
    report: dict[str, Any]

    def card_markdown(self) -> str:
        """A short data card: how the set was made, with what, what was filtered, and its limits."""
        return _card(self.report)


def synthesize(
    cfg: SyntheticConfig,
    *,
    kind: str,
    seeds: list[dict],
    generate_fn: Generate,
    protected: list[str],
    labels: list[str] | None = None,
    classify_fn: Classify | None = None,
    provenance: dict,
    seed: int,
    template: str | None = None,
) -> SyntheticResult:
    """Generate rounds of candidates until ``cfg.n`` rows pass every filter or ``cfg.max_rounds`` ran out."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (resolve auto with resolve_kind), got {kind!r}")
    check_label = kind == "labeled" and cfg.check_label
    if check_label and classify_fn is None:
        raise ValueError(
            "generate.synthetic.check_label needs the run's classifier (classify_fn), or set it false"
        )
    examples = [seed_example(r, kind) for r in seeds]
    if not examples:
        raise ValueError("no seed rows to generate from")
    source = resolve_template(kind, cfg, template)
    where = "generate.synthetic.template" if template or cfg.template else f"the default {kind} template"
    if kind == "labeled":
        labels = list(labels) if labels else sorted({ex["output"] for ex in examples})
        by_label = {lab: [i for i, ex in enumerate(examples) if ex["output"] == lab] for lab in labels}
        if missing := [lab for lab, idx in by_label.items() if not idx]:
            raise ValueError(f"no seed texts of class(es) {missing}: each class needs at least one")
        targets = {lab: cfg.n // len(labels) + (i < cfg.n % len(labels)) for i, lab in enumerate(labels)}
    else:
        labels, by_label, targets = [], {None: list(range(len(examples)))}, {None: cfg.n}
    fixed = [k for ex in examples for k in sf.keys(kind, ex["input"], ex["output"])]
    fixed += [t for t in protected if t.strip()]
    filt = sf.RowFilter(cfg, kind, fixed, [ex["input"] for ex in examples], check_label)
    rng = random.Random(seed)
    room: Counter[str | None] = Counter(targets)
    rows: list[dict[str, Any]] = []
    per_round: list[dict[str, int]] = []
    produced = 0
    for rnd in range(cfg.max_rounds):
        need = {lab: k for lab, k in room.items() if k > 0}
        if not need:
            break
        cands, prompts = [], []
        rate = sum(r["kept"] for r in per_round) / max(1, sum(r["candidates"] for r in per_round))
        for i, lab in enumerate(_plan(need, rate if per_round else None)):
            shown = rng.sample(by_label[lab], min(cfg.seed_examples, len(by_label[lab])))
            variables = {"examples": [examples[j] for j in shown], "label": lab, "labels": labels}
            prompts.append(render_text(source, variables, where))
            cands.append(sf.Candidate(i, lab, shown))
        outputs = generate_fn(prompts, rnd)
        if len(outputs) != len(prompts):
            raise ValueError(f"generate_fn returned {len(outputs)} outputs for {len(prompts)} prompts")
        produced += len(outputs)
        for c, out in zip(cands, outputs, strict=True):
            c.raw = out
        kept = filt.apply(cands, classify_fn, room)
        prov = {**provenance, "seed": provenance.get("seed", seed)}
        rows += [_row(c, kind, rnd, filt.names, prov) for c in kept]
        per_round.append({"round": rnd, "candidates": len(cands), "kept": len(kept)})
    report = _report(cfg, kind, rows, filt, produced, per_round, labels, source)
    report |= {"seeds": len(examples), "protected": len(protected), "provenance": provenance}
    return SyntheticResult(rows=rows, report=report)


def _plan(need: dict[str | None, int], keep_rate: float | None = None) -> list[str | None]:
    """The candidates of a round, interleaved class by class: 1.5x what is still missing in the first
    round, then what is missing divided by the share kept so far (at most 4x), so a model that often
    misses the format does not need many small rounds."""
    floor = MIN_CANDIDATES if len(need) == 1 else 2
    factor = 1.5 if keep_rate is None else min(4.0, max(1.5, 1.2 / max(keep_rate, 0.05)))
    counts = {lab: max(math.ceil(factor * k), floor) for lab, k in need.items()}
    plan: list[str | None] = []
    for turn in range(max(counts.values())):
        plan += [lab for lab, k in counts.items() if turn < k]
    return plan


def _row(c: sf.Candidate, kind: str, rnd: int, filters: list[str], provenance: dict) -> dict[str, Any]:
    prov = {**provenance, "kind": kind, "round": rnd, "candidate": c.index, "seed_examples": c.shown}
    prov["filters"] = dict.fromkeys(filters, "pass")
    if kind == "instruction":
        msgs = [{"role": "user", "content": c.question}, {"role": "assistant", "content": c.answer}]
        return {"messages": msgs, "provenance": prov}
    return {"text": c.question, "label": c.label, "provenance": prov}


def _report(
    cfg: SyntheticConfig,
    kind: str,
    rows: list[dict[str, Any]],
    filt: sf.RowFilter,
    produced: int,
    per_round: list[dict[str, int]],
    labels: list[str],
    source: str,
) -> dict[str, Any]:
    dropped, rounds = filt.dropped, len(per_round)
    complete = len(rows) == cfg.n
    if complete:
        reason = f"{cfg.n} of {cfg.n} rows in {rounds} round{'s' * (rounds != 1)}"
    else:
        why = (
            ", ".join(f"{k} {sf.REASON_TEXT[r]}" for r, k in dropped.most_common() if k) or "nothing dropped"
        )
        reason = f"stopped after {rounds} round{'s' * (rounds != 1)}: {len(rows)} of {cfg.n} rows; {why}"
    report: dict[str, Any] = {
        "kind": kind,
        "requested": cfg.n,
        "kept": len(rows),
        "produced": produced,
        "surplus": filt.surplus,
        "rounds": rounds,
        "max_rounds": cfg.max_rounds,
        "complete": complete,
        "reason": reason,
        "dropped": dict(dropped),
        "filters": filt.names,
        "thresholds": {
            "min_words": cfg.min_words,
            "max_words": cfg.max_words,
            "near_duplicate_jaccard": cfg.near_duplicate_threshold,
            "rouge_l": cfg.rouge_threshold,
        },
        "seed_examples": cfg.seed_examples,
        "per_round": per_round,
        "template_hash": hashlib.sha256(source.encode("utf-8")).hexdigest()[:12],
    }
    if kind == "labeled":
        report["labels"] = {lab: sum(r["label"] == lab for r in rows) for lab in labels}
    return report


def _card(r: dict[str, Any]) -> str:
    prov = r.get("provenance", {})
    how = (
        "a prompt shows random seed question/answer pairs and asks for one new pair (self-instruct)"
        if r["kind"] == "instruction"
        else "for each class in turn, a prompt shows seed texts of that class and asks for one more"
    )
    lines = [
        "# Synthetic data card",
        "",
        f"**{r['kept']} of {r['requested']} rows** ({r['kind']}); {r['reason']}.",
        "",
        "## How it was made",
        f"- {how}; {r['seed_examples']} seed examples per prompt, from {r['seeds']} seed rows.",
        f"- {r['produced']} outputs generated in {r['rounds']} round(s) (at most {r['max_rounds']}).",
    ]
    lines += [f"- {k}: `{v}`" for k, v in prov.items()]
    lines += ["", "## Filters", "", "| filter | dropped |", "|---|---|"]
    lines += [f"| {sf.REASON_TEXT[k]} | {v} |" for k, v in r["dropped"].items() if k != "label_disagrees"]
    if "label" in r["filters"]:
        lines.append(f"| {sf.REASON_TEXT['label_disagrees']} | {r['dropped']['label_disagrees']} |")
    t = r["thresholds"]
    lines += [
        "",
        f"Words {t['min_words']}-{t['max_words']}; near duplicate: MinHash Jaccard >= "
        f"{t['near_duplicate_jaccard']}; ROUGE-L above {t['rouge_l']}; compared with the seeds, "
        f"{r['protected']} protected evaluation texts and the rows kept before.",
    ]
    if r.get("labels"):
        lines += ["", "## Label balance", "", "| label | rows |", "|---|---|"]
        lines += [f"| {lab} | {k} |" for lab, k in r["labels"].items()]
    lines += [
        "",
        "## Known limits",
        "- Written by a language model: facts and answers are not verified.",
        "- Duplicate checks are lexical: a paraphrase of a seed or an evaluation row can pass.",
        "- Rows imitate the seeds, so they inherit the seeds' topics, style and biases.",
    ]
    if "label" in r["filters"]:
        lines.append(
            "- Labels are kept only where the run's classifier agrees: hard cases it gets wrong are lost."
        )
    elif r["kind"] == "labeled":
        lines.append("- Labels were not checked by a classifier: they are what the prompt asked for.")
    return "\n".join(lines) + "\n"


def write(result: SyntheticResult, folder: Path) -> dict[str, Path]:
    """``synthetic.jsonl`` (a data-stage source), ``synthetic_report.json`` and ``synthetic_card.md``."""
    paths = {
        "rows": folder / "synthetic.jsonl",
        "report": folder / "synthetic_report.json",
        "card": folder / "synthetic_card.md",
    }
    atomic_write_jsonl(paths["rows"], result.rows)
    atomic_write_json(paths["report"], result.report)
    atomic_write_text(paths["card"], result.card_markdown())
    return paths
