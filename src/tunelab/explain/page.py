"""explain/index.html: one self-contained page explaining a fine-tuned model, built with :mod:`tunelab.html`.

Inline CSS and SVG only (no script, link, font or image), readable with JavaScript disabled. Sections:
summary, faithfulness (first, so readers know which explanation to believe), examples (word heatmaps per
method), attention (CSS-only layer/head picker), global importance, rules and layers. Any section whose
data is missing says "not computed" (with a matching note as the reason); a section that fails to render
says so instead of losing the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tunelab import html as h
from tunelab.explain import page_attention as pa
from tunelab.html import escape, fmt

UNSIGNED = frozenset({"saliency", "attention"})
RANDOM = "random"
SECTIONS = (
    ("summary", "Summary"),
    ("faithfulness", "Faithfulness"),
    ("examples", "Examples"),
    ("attention", "Attention"),
    ("global", "Global importance"),
    ("rules", "Rules"),
    ("layers", "Layers"),
)
KEYWORDS = {
    "faithfulness": ("faithful", "comprehensiveness"),
    "attention": ("attention",),
    "global": ("global",),
    "rules": ("rule", "surrogate"),
    "layers": ("layer", "probe", "cka", "logit lens"),
}
CSS = (
    ".ex{border:1px solid #ddd;border-radius:6px;padding:.1rem .8rem .6rem;margin:1rem 0}"
    ".txt{background:#fafafa;padding:.3rem .5rem;white-space:pre-wrap;margin:.3rem 0}"
    ".mrow{display:flex;gap:.8rem;border-top:1px solid #eee;padding:.3rem 0}"
    ".mname{flex:0 0 13rem;font-size:.85rem}.mname small{display:block;color:#666}"
    ".hm{flex:1;line-height:1.9}.hm span{padding:1px 2px;border-radius:3px}"
    ".hm .sp{color:#888;font-style:italic}.tau td{text-align:center;min-width:3.5rem}"
    "details{margin:.3rem 0}summary{cursor:pointer;color:#246}"
)


def render_page(payload: Mapping[str, Any]) -> str:
    """The whole explain page for one payload (see the module docstring of the explain command)."""
    p = payload if isinstance(payload, Mapping) else {}
    body = "".join(_guarded(sid, title, p) for sid, title in SECTIONS)
    title = str(p.get("title") or f"Explanations: {p.get('run', '')}")
    sub = f"run {p.get('run', '?')} · {p.get('model', '?')} model · {p.get('kind', '?')}"
    sub += f" · split {p.get('split', '?')}"
    return h.page(title, body, subtitle=sub, nav=SECTIONS, css=CSS + pa.HEAT_CSS + pa.css(p.get("attention")))


def _guarded(sid: str, title: str, p: Mapping[str, Any]) -> str:
    try:
        inner = RENDERERS[sid](p)
    except Exception as e:  # one broken section must not lose the whole page
        inner = h.notice(f"This section could not be rendered: {type(e).__name__}: {e}")
    return h.section(title, inner, id=sid)


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _f(v: Any, digits: int = 3) -> str:
    x = _num(v)
    return "—" if x is None else fmt(x, digits)


def _pct(v: Any) -> str:
    x = _num(v)
    return "—" if x is None else f"{100 * x:.0f}%"


def _beats(a: Any, b: Any) -> bool:
    x, y = _num(a), _num(b)
    return x is not None and y is not None and x > y


def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def not_computed(p: Mapping[str, Any], key: str) -> str:
    """A "not computed" line, with the notes that mention this section as the reason."""
    words = KEYWORDS.get(key, (key,))
    reasons = [str(n) for n in p.get("notes") or [] if any(w in str(n).lower() for w in words)]
    return f"<p class='nc'><i>Not computed{': ' + escape('; '.join(reasons)) if reasons else '.'}</i></p>"


def _methods(p: Mapping[str, Any]) -> list[str]:
    """The payload's methods in order, then any others that examples or faithfulness mention."""
    names = [str(m) for m in p.get("methods") or []]
    for ex in p.get("examples") or []:
        names += [str(m) for m in _map(_map(ex).get("methods"))]
    names += [str(m) for m in _map(_map(p.get("faithfulness")).get("methods")) if m != RANDOM]
    return list(dict.fromkeys(names))


def best_method(p: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], Mapping[str, Any]] | None:
    """(name, its figures, random's figures) of the method with the highest mean comprehensiveness."""
    table = _map(_map(p.get("faithfulness")).get("methods"))
    scored = [
        (m, _map(v))
        for m, v in table.items()
        if m != RANDOM and _num(_map(v).get("comprehensiveness")) is not None
    ]
    if not scored:
        return None
    name, row = max(scored, key=lambda mv: _num(mv[1]["comprehensiveness"]) or 0.0)
    return name, row, _map(table.get(RANDOM))


def summary(p: Mapping[str, Any]) -> str:
    """Headline cards, the notes as notices and the methods that were skipped."""
    methods = [str(m) for m in p.get("methods") or []]
    items: list[tuple[Any, str]] = [
        (p.get("model", "?"), "model"),
        (len(p.get("examples") or []), "examples explained"),
        (len(methods), "methods"),
    ]
    best = best_method(p)
    if best:
        name, row, rnd = best
        beats = _beats(row.get("comprehensiveness"), rnd.get("comprehensiveness"))
        items.append(
            (
                name,
                f"most faithful by comprehensiveness ({_f(row.get('comprehensiveness'))} vs random "
                f"{_f(rnd.get('comprehensiveness'))}: {'beats' if beats else 'does NOT beat'} random; "
                f"better than random on {_pct(row.get('beats_random'))} of examples)",
            )
        )
    labels = ", ".join(map(str, p.get("labels") or [])) or "—"
    out = h.cards(items) + h.paragraph(f"Methods in order: {', '.join(methods) or '—'}. Labels: {labels}.")
    out += "".join(h.notice(str(n)) for n in p.get("notes") or [])
    out += "".join(h.notice(f"{m} skipped: {r}", "info") for m, r in _map(p.get("skipped")).items())
    return out


def faithfulness(p: Mapping[str, Any]) -> str:
    """Comprehensiveness / sufficiency per method against random, a chart, and rank agreement."""
    timing, fa = _map(p.get("timing")), p.get("faithfulness")
    if not isinstance(fa, Mapping):
        rows = [[m, _f(s)] for m, s in timing.items()]
        return not_computed(p, "faithfulness") + (
            h.table(["method", "mean seconds"], rows, {1}) if rows else ""
        )
    table, order = _map(fa.get("methods")), [m for m in _methods(p) if m in _map(fa.get("methods"))]
    units = fa.get("units") or ("log-probability (nats)" if p.get("kind") == "causal" else "probability")
    fracs = ", ".join(f"{100 * x:g}%" for x in (_num(v) for v in fa.get("fractions") or []) if x is not None)
    intro = h.paragraph(
        f"Comprehensiveness: drop in the model's {units} when a method's top words are removed (higher is "
        f"better). Sufficiency: drop when only those words are kept (lower is better). Averaged over the top "
        f"{fracs or 'k'} of words; a random word order is the baseline every method must beat."
    )
    rows = []
    for m in [*order, RANDOM]:
        r = _map(table.get(m))
        if r:
            beats = "baseline" if m == RANDOM else _pct(r.get("beats_random"))
            comp, suff = _f(r.get("comprehensiveness")), _f(r.get("sufficiency"))
            rows.append([m, comp, suff, beats, r.get("n_examples", "—"), _f(timing.get(m))])
    heads = "method|comprehensiveness ↑|sufficiency ↓|beats random (% of examples)|examples|mean seconds"
    groups = {
        k: {m: _num(_map(table.get(m)).get(k)) or 0.0 for m in [*order, RANDOM] if m in table}
        for k in ("comprehensiveness", "sufficiency")
    }
    chart = h.grouped_bar_chart(groups, title=f"faithfulness ({units})", width=520)
    return (
        intro
        + h.table(heads.split("|"), rows, {1, 2, 3, 4, 5})
        + chart
        + pa.agreement(fa.get("agreement"), order)
    )


def examples(p: Mapping[str, Any]) -> str:
    """One card per explained example (:mod:`tunelab.explain.page_examples`)."""
    from tunelab.explain.page_examples import examples as cards

    return cards(p)


def attention(p: Mapping[str, Any]) -> str:
    """The CSS-only attention picker of each attention example."""
    body = pa.attention_body(p.get("attention"))
    return body or not_computed(p, "attention")


def global_importance(p: Mapping[str, Any]) -> str:
    """Per predicted label, a bar chart of its top words and their figures."""
    g = p.get("global")
    if not isinstance(g, Mapping) or not isinstance(g.get("labels"), Mapping):
        return not_computed(p, "global")
    intro = h.paragraph(
        f"Words ranked by mean {g.get('method', '?')} attribution × log(1 + count) over the examples "
        f"predicted each label; words seen fewer than {g.get('min_count', '?')} times are left out."
    )
    parts = []
    for i, (label, d) in enumerate(g["labels"].items()):
        top = [_map(w) for w in _map(d).get("top") or []]
        title = f"{label} ({_map(d).get('n_examples', 0)} examples)"
        chart = h.bar_chart(
            {str(w.get("word")): _num(w.get("score")) or 0.0 for w in top},
            title=title,
            color=h.color_for(str(label), i),
        )
        rows = [
            [w.get("word"), _f(w.get("mean")), w.get("count"), w.get("examples"), _pct(w.get("share"))]
            for w in top
        ]
        tab = h.table(["word", "mean", "count", "examples", "share"], rows, {1, 2, 3, 4}) if rows else ""
        parts.append(f"<div>{chart}<details><summary>figures</summary>{tab}</details></div>")
    return intro + h.row(*parts)


def rules(p: Mapping[str, Any]) -> str:
    """The surrogate tree's fidelity vs the majority baseline, its rules and their plain text."""
    r = p.get("rules")
    if not isinstance(r, Mapping):
        return not_computed(p, "rules")
    fid, maj = _num(r.get("fidelity")), _num(r.get("majority_fidelity"))
    ok = fid is not None and maj is not None and fid > maj
    text = (
        f"Surrogate tree (depth {r.get('depth', '?')}, {r.get('n_leaves', '?')} leaves): held-out fidelity "
        f"{_pct(fid)} on {r.get('n_heldout', '?')} texts {'beats' if ok else 'does NOT beat'} the majority "
        f"baseline {_pct(maj)}; train fidelity {_pct(r.get('train_fidelity'))} on {r.get('n_train', '?')} "
        "texts."
    )

    def cond(c: Any) -> str:
        c = _map(c)
        return f"“{c.get('ngram')}” {'present' if c.get('present') else 'absent'}"

    rows = [
        [
            " AND ".join(cond(c) for c in _map(x).get("conditions") or []) or "(always)",
            _map(x).get("label"),
            _f(_map(x).get("confidence")),
            _pct(_map(x).get("coverage")),
            _map(x).get("support", "—"),
            _pct(_map(x).get("heldout_accuracy")),
        ]
        for x in r.get("rules") or []
    ]
    heads = ["if", "then", "confidence", "coverage", "support", "held-out agreement"]
    out = h.notice(text, "ok" if ok else "warn") + h.table(heads, rows, {2, 3, 4, 5})
    return out + (f"<pre>{escape(p['rules_text'])}</pre>" if p.get("rules_text") else "")


def logit_lens(lens: Any, last: int = 6) -> str:
    """A layer x last-positions table of the top-1 lens token and its probability."""
    lens = _map(lens)
    top = [row for row in lens.get("top") or [] if isinstance(row, Sequence)]
    if not top:
        return "<p><i>Logit lens: no per-layer predictions in the payload.</i></p>"
    n_pos = max(len(row) for row in top)
    toks = list(lens.get("tokens") or lens.get("input_tokens") or [])
    pos = list(range(max(0, n_pos - last), n_pos))
    heads = ["layer"] + [f"{i}: {toks[i]!r}" if i < len(toks) else f"position {i}" for i in pos]

    def cell(row: Sequence[Any], i: int) -> str:
        e = _map(row[i]) if i < len(row) else {}
        names, ids, probs = e.get("tokens") or [], e.get("ids") or [], e.get("probs") or []
        name = names[0] if names else (f"id {ids[0]}" if ids else "?")
        return f"{name!r} ({_f(probs[0], 2) if probs else '?'})"

    rows = [[li, *(cell(row, i) for i in pos)] for li, row in enumerate(top)]
    diff = lens.get("last_layer_max_abs_diff")
    cap = "Logit lens: top-1 token (probability) read from each layer at the last positions" + (
        f"; last layer vs model logits max |diff| {_f(diff)}" if diff is not None else ""
    )
    return h.table(heads, rows, {0}, caption=cap)


def layers(p: Mapping[str, Any]) -> str:
    """Probe accuracy and CKA by layer (line charts) and the logit lens table."""
    lay = p.get("layers")
    if not isinstance(lay, Mapping):
        return not_computed(p, "layers")
    probe, cka = lay.get("probe"), lay.get("cka")
    parts = []
    if probe:
        pts = [_map(x) for x in probe]
        series = {
            "probe accuracy": [(x.get("layer"), x.get("accuracy")) for x in pts],
            "majority": [(x.get("layer"), x.get("majority")) for x in pts],
        }
        parts.append(
            h.line_chart(series, title="linear probe accuracy by layer", x_label="layer", y_label="accuracy")
        )
    else:
        parts.append("<p><i>Probe: not computed.</i></p>")
    if cka:
        pts = [(_map(x).get("layer"), _map(x).get("cka")) for x in cka]
        parts.append(h.line_chart({"CKA": pts}, title="CKA by layer", x_label="layer", y_label="CKA"))
    else:
        parts.append("<p><i>CKA: not computed.</i></p>")
    lens = lay.get("logit_lens")
    tail = logit_lens(lens) if lens else "<p><i>Logit lens: not computed.</i></p>"
    return h.row(*parts) + tail


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "summary": summary,
    "faithfulness": faithfulness,
    "examples": examples,
    "attention": attention,
    "global": global_importance,
    "rules": rules,
    "layers": layers,
}
