"""data/data_report.html: one self-contained page (inline CSS and SVG, no scripts, fonts or links)."""

from __future__ import annotations

import html
import json
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4rem .7rem;margin:.3rem 0}
.ok{background:#eaf7ea;border-left:4px solid #3a3;padding:.4rem .7rem;margin:.3rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.7rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem}
.card b{display:block;font-size:1.3rem}.row{display:flex;flex-wrap:wrap;gap:1.5rem}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem}pre{white-space:pre-wrap;
background:#f8f8f8;padding:.4rem;margin:0;max-height:12rem;overflow:auto}
svg text{font-size:10px;fill:#444}
"""
COLORS = {"train": "#4878a8", "validation": "#e0a030", "test": "#5aa05a"}


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='n'>{_e(c)}</td>" if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def bar_chart(values: dict[str, float], width: int = 360, color: str = "#4878a8", title: str = "") -> str:
    """Horizontal bars as inline SVG."""
    if not values:
        return "<p><i>no data</i></p>"
    top = max(values.values()) or 1
    h = 18 * len(values) + 24
    parts = [
        f"<svg width='{width}' height='{h}' role='img' aria-label='{_e(title)}'>",
        f"<text x='0' y='11'>{_e(title)}</text>",
    ]
    for i, (k, v) in enumerate(values.items()):
        y = 18 + 18 * i
        w = (width - 170) * v / top
        parts.append(
            f"<text x='0' y='{y + 11}'>{_e(str(k)[:18])}</text>"
            f"<rect x='110' y='{y}' width='{w:.1f}' height='13' fill='{color}'/>"
            f"<text x='{114 + w:.1f}' y='{y + 11}'>{_e(v)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(
    h: dict[str, Any], unit: str, color: str, title: str, width: int = 330, height: int = 150
) -> str:
    if not h.get("count"):
        return f"<p><i>{_e(title)}: no rows</i></p>"
    counts, edges = h["counts"], h["edges"]
    top = max(counts) or 1
    bw = (width - 40) / len(counts)
    plot_h = height - 40
    parts = [
        f"<svg width='{width}' height='{height}' role='img' aria-label='{_e(title)}'>",
        f"<text x='0' y='11'>{_e(title)} ({_e(unit)}; mean {h['mean']}, p95 {h['p95']}, "
        f"max {h['max']})</text>",
    ]
    for i, c in enumerate(counts):
        bh = plot_h * c / top
        x = 30 + i * bw
        parts.append(
            f"<rect x='{x:.1f}' y='{18 + plot_h - bh:.1f}' width='{max(bw - 1, 1):.1f}' "
            f"height='{bh:.1f}' fill='{color}'><title>{edges[i]:g}-{edges[i + 1]:g}: {c}</title></rect>"
        )
    parts.append(
        f"<text x='30' y='{height - 8}'>0</text>"
        f"<text x='{width - 60}' y='{height - 8}'>{_e(h['clipped_at'])}+</text>"
        f"<text x='0' y='26'>{top}</text></svg>"
    )
    return "".join(parts)


def render(r: dict[str, Any]) -> str:
    s = r["summary"]
    out = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Data report</title>"
        f"<style>{CSS}</style></head><body><h1>Data report ({_e(r['task'])})</h1>"
    ]
    recon = "ok" if s["reconciles"] else "warn"
    out.append(
        f"<div class='{recon}'>rows read {s['rows_read']} = kept {s['rows_kept']} + quarantined "
        f"{s['rows_quarantined']}" + ("" if s["reconciles"] else " (does not reconcile)") + "</div>"
    )
    out.append(
        "<div class='cards'>"
        + "".join(
            f"<div class='card'><b>{_e(s[k])}</b>{_e(label)}</div>"
            for k, label in (
                ("train_rows", "train"),
                ("validation_rows", "validation"),
                ("test_rows", "test"),
                ("exact_duplicates", "exact duplicates"),
                ("near_duplicates", "near duplicates"),
                ("leakage_pairs", "pairs straddling splits"),
                ("rows_quarantined", "quarantined"),
            )
        )
        + "</div>"
    )
    out += [f"<div class='warn'>{_e(w)}</div>" for w in r["warnings"]]

    out.append("<h2>Sources</h2>")
    out.append(
        _table(
            ["source", "location", "available", "read", "valid", "split", "weight", "labels allowed"],
            [
                [
                    x["name"],
                    x["location"],
                    x["rows_available"],
                    x["rows_read"],
                    x["rows_valid"],
                    x["split"] or "ratio",
                    x["weight"],
                    ", ".join(x["labels_allowed"] or []) or "any",
                ]
                for x in r["sources"]
            ],
            {2, 3, 4, 6},
        )
    )
    out.append("<h2>Steps</h2>")
    reasons = r["top_reasons"]
    out.append(
        _table(
            ["step", "rows in", "removed", "rows out", "main reasons"],
            [
                [
                    x["step"],
                    x["in"],
                    x["removed"],
                    x["out"],
                    "; ".join(f"{k} ({n})" for k, n in reasons.get(x["step"], [])),
                ]
                for x in r["steps"]
            ],
            {1, 2, 3},
        )
    )

    out.append("<h2>Splits and labels</h2><div class='row'>")
    for name, sp in r["splits"].items():
        title = f"{name}: {sp['rows']} rows" + (f", {sp['groups']} groups" if sp["groups"] else "")
        out.append(
            bar_chart(sp["labels"], color=COLORS[name], title=title)
            if sp["labels"]
            else f"<p>{_e(title)}</p>"
        )
    out.append("</div>")

    lengths = r["lengths"]
    out.append(f"<h2>Lengths ({_e(lengths['unit'])})</h2><div class='row'>")
    for name in ("train", "validation", "test"):
        out.append(histogram_svg(lengths[name], lengths["unit"], COLORS[name], name))
    out.append("</div>")

    d = r["duplicates"]
    out.append("<h2>Duplicates and leakage</h2>")
    out.append(
        f"<p>Exact duplicates removed: <b>{d['exact']['removed']}</b>. Near duplicates "
        f"(MinHash LSH, Jaccard &ge; {d['near']['threshold']}, action {_e(d['near']['action'])}): "
        f"<b>{d['near']['pairs']}</b> pairs in <b>{d['near']['clusters']}</b> clusters, "
        f"<b>{d['near']['removed']}</b> rows removed. Texts with conflicting labels: "
        f"<b>{d['conflicting_label_groups']}</b>.</p>"
    )
    leak = d["leakage"]
    cls = "warn" if leak["pairs"] else "ok"
    out.append(
        f"<div class='{cls}'>Leakage check: {leak['pairs']} near-duplicate pairs straddle splits "
        f"({leak.get('checked_rows', 0)} validation/test rows checked)</div>"
    )
    if d["exact"]["examples"]:
        out.append(
            _table(
                ["kept", "removed", "text"],
                [[x["kept"], x["removed"], x["text"]] for x in d["exact"]["examples"]],
            )
        )
    if d["near"]["examples"]:
        out.append(
            _table(
                ["cluster size", "kept", "near copies"],
                [
                    [
                        x["size"],
                        f"{x['kept']}: {x['text']}",
                        " | ".join(f"{o['source']}: {o['text']}" for o in x["others"]),
                    ]
                    for x in d["near"]["examples"]
                ],
                {0},
            )
        )

    p = r["pii"]
    out.append("<h2>Personal data</h2>")
    if p["enabled"]:
        out.append(f"<p>{p['rows']} rows had personal data replaced by placeholders.</p>")
        out.append(bar_chart(p["counts"], title="found, by type") if p["counts"] else "<p>None found.</p>")
        if p["examples"]:
            out.append(_table(["type", "found (masked)"], [[x["type"], x["found"]] for x in p["examples"]]))
    else:
        out.append("<p>PII scrubbing is off.</p>")

    out.append("<h2>Diversity</h2>")
    out.append(
        _table(
            ["split", "vocabulary", "tokens", "distinct-1", "distinct-2", "top words"],
            [
                [
                    k,
                    v["vocab_size"],
                    v["tokens"],
                    v["distinct_1"],
                    v["distinct_2"],
                    ", ".join(w for w, _ in v["top_words"][:10]),
                ]
                for k, v in r["diversity"].items()
            ],
            {1, 2, 3, 4},
        )
    )

    ex = r["examples"]
    out.append("<h2>Examples of kept rows</h2>")
    out.append(
        _table(["split", "source", "row"], [[x.get("split", ""), x["source"], _brief(x)] for x in ex["kept"]])
    )
    out.append("<h2>Examples of removed rows</h2>")
    for step, rows in ex["removed"].items():
        out.append(f"<h3>{_e(step)}</h3>")
        out.append(
            _table(
                ["source", "reason", "row"],
                [[x["source"], x["reason"], json.dumps(x["row"], ensure_ascii=False)[:400]] for x in rows],
            )
        )
    out.append("</body></html>\n")
    return "".join(out)


def _brief(x: dict[str, Any]) -> str:
    if "messages" in x:
        return " | ".join(f"{m['role']}: {m['content']}" for m in x["messages"])
    return f"[{x.get('label', '')}] {x.get('text', '')}"
