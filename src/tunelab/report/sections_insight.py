"""What the model does: explanations (a gallery of shaded examples, faithfulness, the words that push
each class) and generation (samples, diversity and quality, the decoding sweep)."""

from __future__ import annotations

from typing import Any

from tunelab import html as h
from tunelab.html import escape
from tunelab.report import charts
from tunelab.report.common import Problem, Run, attempt, f, items, link, mapping, num

TOP_WORDS = 8
MAX_LABEL_CHARTS = 6
SWEEP_COLUMNS = ("distinct_2", "self_bleu", "entropy", "perplexity", "rouge_l")


def explanation(run: Run) -> str:
    examples = run.jsonl("explain/examples.jsonl", limit=run.examples) if run.examples else []
    faith = attempt(run, _faithfulness) if run.has("explain/faithfulness.json") else ""
    method, why = _shown_method(run, examples)
    parts = []
    if examples:
        intro = f"The first {len(examples)} explained examples, words shaded by {method} ({why})."
        parts += [h.paragraph(intro), charts.legend(), *(_example(e, method) for e in examples)]
    parts.append(faith)
    if run.has("explain/global.json"):
        parts.append(attempt(run, _global))
    if run.has("explain/rules.json"):
        parts.append(attempt(run, _rules))
    parts.append(link("explain/index.html", run, "explanations (every method, attention, rules, layers)"))
    return "".join(parts)


def _shown_method(run: Run, examples: list[dict[str, Any]]) -> tuple[str, str]:
    """The method whose word scores shade the gallery: the most faithful, else the first one run."""
    summary = mapping(run.record("explain").get("summary"))
    found = {m for e in examples for m in mapping(e.get("methods"))}
    best = summary.get("most_faithful")
    if isinstance(best, str) and best in found:
        return best, "the most faithful method of this run"
    if run.has("explain/faithfulness.json"):
        try:
            methods = mapping(run.object("explain/faithfulness.json").get("methods"))
        except Problem:
            methods = {}
        ranked = sorted(
            (
                m
                for m in methods
                if m in found and num(mapping(methods[m]).get("comprehensiveness")) is not None
            ),
            key=lambda m: -num(methods[m]["comprehensiveness"]),
        )
        if ranked:
            return ranked[0], "the most comprehensive method of this run"
    first = next(iter(sorted(found)), "?")
    return first, "the first method run"


def _example(e: dict[str, Any], method: str) -> str:
    res = mapping(mapping(e.get("methods")).get(method))
    words, scores = items(e.get("words")), items(res.get("words"))
    if words and len(scores) == len(words):
        shaded = charts.shaded_words(words, scores)
    elif items(e.get("tokens")) and len(items(res.get("tokens"))) == len(items(e.get("tokens"))):
        shaded = charts.shaded_words(e["tokens"], res["tokens"])
    else:
        shaded = f"<span class='words'>{escape(e.get('text', ''))}</span> <i>(no {escape(method)} scores)</i>"
    pred, answer = mapping(e.get("prediction")), e.get("answer")
    head = f"#{e.get('index', '?')} · {e.get('source', '?')}"
    outcome = ""
    if pred:
        label, gold = pred.get("label"), pred.get("gold")
        p = num(mapping(pred.get("probs")).get(str(label)))
        wrong = gold is not None and str(gold) != str(label)
        outcome = (
            f"predicted <b>{escape(label)}</b>"
            + (f" (p {escape(f(p, 3))})" if p is not None else "")
            + (f", gold {escape(gold)}" if gold is not None else "")
            + (" <span class='bad'>misclassified</span>" if wrong else "")
        )
    elif isinstance(answer, dict) and answer.get("text"):
        outcome = f"answer: <q>{escape(answer['text'])}</q>"
    elif isinstance(answer, str) and answer:
        outcome = f"answer: <q>{escape(answer)}</q>"
    return f"<div class='ex'><div class='exh'>{escape(head)} · {outcome}</div>{shaded}</div>"


def _faithfulness(run: Run) -> str:
    fa = run.json("explain/faithfulness.json")
    methods = mapping(mapping(fa).get("methods"))
    if not methods:
        return ""
    rnd = mapping(methods.get("random"))
    rows = []
    for name, m in methods.items():
        m = mapping(m)
        beats = m.get("beats_random")
        rows.append(
            [
                name,
                f(m.get("comprehensiveness"), 3),
                f(m.get("sufficiency"), 3),
                "-" if name == "random" or beats is None else f(beats, 3),
            ]
        )
    cap = "faithfulness (comprehensiveness: higher is better; sufficiency: lower is better)"
    if rnd:
        cap += "; random = a random ordering of the words"
    return h.table(
        ["method", "comprehensiveness", "sufficiency", "share beating random"],
        rows,
        numeric=[1, 2, 3],
        caption=cap,
    )


def _global(run: Run) -> str:
    g = run.json("explain/global.json")
    if not isinstance(g, dict):
        return h.paragraph("Global importance was not computed (see the explain page's notes).")
    per_label = mapping(g.get("labels"))
    charts_ = []
    for label, entry in list(per_label.items())[:MAX_LABEL_CHARTS]:
        top = [mapping(w) for w in items(mapping(entry).get("top"))[:TOP_WORDS]]
        values = {str(w.get("word")): num(w.get("score")) or 0.0 for w in top if w.get("word") is not None}
        n = mapping(entry).get("n_examples", 0)
        title = f"pushes towards {label} ({n} examples)"
        charts_.append(
            h.bar_chart(values, title=title, width=320) if values else h.paragraph(f"{title}: none")
        )
    method = g.get("method", "?")
    intro = h.paragraph(
        f"Top words per predicted label over the split, by {method} ({g.get('ranking', '')})."
    )
    return h.section("Top words", intro + h.row(*charts_), level=3) if charts_ else ""


def _rules(run: Run) -> str:
    r = run.json("explain/rules.json")
    if not isinstance(r, dict) or num(r.get("fidelity")) is None:
        return ""
    text = f"Surrogate decision tree: agrees with the model on {num(r['fidelity']):.0%} of held-out rows"
    if num(r.get("majority_fidelity")) is not None:
        text += f" (always predicting the majority label: {num(r['majority_fidelity']):.0%})"
    return h.paragraph(text + "; the rules are in explain/rules.txt.")


def generation(run: Run) -> str:
    parts = []
    if run.has("generate/diversity.json"):
        parts.append(attempt(run, _diversity))
    if run.has("generate/samples.jsonl"):
        parts.append(attempt(run, _samples))
    if run.has("generate/sweep.json"):
        parts.append(h.section("Decoding sweep", attempt(run, _sweep), level=3))
    if not parts:
        raise Problem("generate/samples.jsonl and generate/diversity.json are missing")
    parts.append(
        link("generate/index.html", run, "generation (every sample, prompts, sweep, synthetic data)")
    )
    return "".join(parts)


def _samples(run: Run) -> str:
    rows = []
    for r in run.jsonl("generate/samples.jsonl", limit=run.samples):
        samples = [mapping(s) for s in items(r.get("samples"))]
        shown = "\n---\n".join(str(s.get("text", "")) for s in samples[:3])
        more = f" (+{len(samples) - 3} more)" if len(samples) > 3 else ""
        rows.append([r.get("prompt", ""), r.get("reference") or "-", shown + more])
    if not rows:
        return ""
    return h.table(["prompt", "reference", "samples"], rows, caption=f"the first {len(rows)} prompts")


def _diversity(run: Run) -> str:
    d = run.object("generate/diversity.json")
    scopes = {k: mapping(d.get(k)) for k in ("within", "across") if isinstance(d.get(k), dict)}
    names = list(dict.fromkeys(k for s in scopes.values() for k in s))
    parts = []
    q = mapping(d.get("quality"))
    cards = [(f(v, 3), k.replace("_", " ")) for k, v in q.items() if num(v) is not None]
    if q.get("perplexity_model"):
        cards = [
            (v, f"{k} (under the {q['perplexity_model']} model)" if k == "perplexity" else k)
            for v, k in cards
        ]
    if num(d.get("tokens_per_s")) is not None:
        cards.append((f(d["tokens_per_s"], 3), "tokens/s"))
    if cards:
        parts.append(h.cards(cards))
    if names:
        rows = [[scope, *(f(s.get(n), 3) for n in names)] for scope, s in scopes.items()]
        cap = "diversity within each prompt's samples and across prompts"
        parts.append(h.table(["", *names], rows, numeric=range(1, len(names) + 1), caption=cap))
    return "".join(parts)


def _sweep(run: Run) -> str:
    s = run.object("generate/sweep.json")
    rows = [mapping(r) for r in items(s.get("rows"))]
    front = {int(i) for i in items(s.get("pareto_front")) if isinstance(i, int)}
    target = mapping(s.get("target"))
    chosen = target.get("chosen")
    cols = [c for c in SWEEP_COLUMNS if any(c in r for r in rows)]
    table = []
    for i, r in enumerate(rows):
        setting = ", ".join(
            f"{k} {f(r[k])}" for k in ("temperature", "top_p", "min_p", "top_k") if r.get(k) is not None
        )
        mark = ("chosen" if i == chosen else "") + (" · Pareto" if i in front else "")
        table.append([setting or "greedy", *(f(r.get(c), 3) for c in cols), mark.strip(" ·")])
    parts = [h.table(["setting", *cols, ""], table, numeric=range(1, len(cols) + 1))] if table else []
    if target.get("reason"):
        parts.append(h.notice(str(target["reason"]), "info"))
    return "".join(parts)
