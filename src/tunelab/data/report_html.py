"""data/data_report.html: the data report as one self-contained page, built with :mod:`tunelab.html`."""

from __future__ import annotations

import json
from typing import Any

from tunelab import html as h
from tunelab.html import escape

SPLIT_NAMES = ("train", "validation", "test")
CARDS = (
    ("train_rows", "train"),
    ("validation_rows", "validation"),
    ("test_rows", "test"),
    ("exact_duplicates", "exact duplicates"),
    ("near_duplicates", "near duplicates"),
    ("leakage_pairs", "pairs straddling splits"),
    ("rows_quarantined", "quarantined"),
)


def render(r: dict[str, Any]) -> str:
    """The whole page for one ``data_report.json`` dict."""
    sections = (
        summary, sources, steps, labels, lengths, long_texts, duplicates, pii, diversity, kept, removed
    )
    return h.page(f"Data report ({r['task']})", "".join(f(r) for f in sections))


def summary(r: dict[str, Any]) -> str:
    """Row reconciliation, headline counts and warnings."""
    s = r["summary"]
    recon = f"rows read {s['rows_read']} = kept {s['rows_kept']} + quarantined {s['rows_quarantined']}" + (
        "" if s["reconciles"] else " (does not reconcile)"
    )
    return (
        h.notice(recon, "ok" if s["reconciles"] else "warn")
        + h.cards((s[k], label) for k, label in CARDS)
        + "".join(h.notice(w) for w in r["warnings"])
    )


def sources(r: dict[str, Any]) -> str:
    """One row per configured source."""
    headers = ["source", "location", "available", "read", "valid", "split", "weight", "labels allowed"]
    rows = [
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
    ]
    return h.section("Sources", h.table(headers, rows, numeric={2, 3, 4, 6}))


def steps(r: dict[str, Any]) -> str:
    """Rows in, removed and out for each cleaning step, with its main reasons."""
    reasons = r["top_reasons"]
    rows = [
        [
            x["step"],
            x["in"],
            x["removed"],
            x["out"],
            "; ".join(f"{k} ({n})" for k, n in reasons.get(x["step"], [])),
        ]
        for x in r["steps"]
    ]
    headers = ["step", "rows in", "removed", "rows out", "main reasons"]
    return h.section("Steps", h.table(headers, rows, numeric={1, 2, 3}))


def labels(r: dict[str, Any]) -> str:
    """Split sizes and, for labelled tasks, a label bar chart per split."""
    charts = []
    for i, (name, sp) in enumerate(r["splits"].items()):
        title = f"{name}: {sp['rows']} rows" + (f", {sp['groups']} groups" if sp["groups"] else "")
        if sp.get("label_values"):  # numeric labels: their range instead of a chart
            v = sp["label_values"]
            title += f"; labels {v['min']:g} to {v['max']:g}, mean {v['mean']:g}"
        color = h.color_for(name, i)
        charts.append(
            h.bar_chart(sp["labels"], color=color, title=title) if sp["labels"] else h.paragraph(title)
        )
    return h.section("Splits and labels", h.row(*charts))


def lengths(r: dict[str, Any]) -> str:
    """A length histogram per split."""
    ln, unit = r["lengths"], r["lengths"]["unit"]
    charts = []
    for i, name in enumerate(SPLIT_NAMES):
        x = ln.get(name) or {}
        if not x.get("count"):
            charts.append(h.histogram([], [], title=name, empty="no rows"))
            continue
        title = f"{name} ({unit}; mean {x['mean']}, p95 {x['p95']}, max {x['max']})"
        charts.append(
            h.histogram(
                x["counts"],
                x["edges"],
                title=title,
                color=h.color_for(name, i),
                x_labels=("0", f"{x['clipped_at']}+"),
            )
        )
    return h.section(f"Lengths ({unit})", h.row(*charts))


def long_texts(r: dict[str, Any]) -> str:
    """Per split: texts longer than model.max_length tokens, their share and what cutting loses."""
    lt = r.get("long_texts")
    if not lt:
        return ""  # a task without text rows, or a report from before the count
    title = f"Texts longer than model.max_length ({lt['max_length']} tokens)"
    if lt.get("skipped"):
        return h.section(title, h.notice(f"Not counted: {lt['skipped']}", "info"))
    chunk = lt["long_text"] == "chunk"
    headers = ["split", "texts", "over max_length", "share", "median tokens", "p95 tokens", "max tokens",
               "mean tokens over"] + (["windows", "windows dropped"] if chunk else [])
    rows = []
    for name, x in lt["splits"].items():
        tokens = x.get("tokens") or {}
        row = [name, x["texts"], x["over"], f"{x['share']:.1%}", tokens.get("p50", ""), tokens.get("p95", ""),
               tokens.get("max", ""), x.get("mean_cut", "")]
        rows.append(row + ([x.get("windows", ""), x.get("dropped_windows", "")] if chunk else []))
    share = (lt["splits"].get("train") or {}).get("share", 0.0)
    reads = {
        "truncate": "cut to their first tokens",
        "head_tail": "read as their first quarter and last three quarters of the budget",
        "chunk": "read in overlapping windows whose logits are pooled",
    }[lt["long_text"]]
    verdict = h.notice(
        f"{share:.1%} of train texts are longer than model.max_length; with model.long_text: "
        f"{lt['long_text']} they are {reads}.",
        "warn" if share > lt["warn_above"] and lt["long_text"] == "truncate" else "info",
    )
    numeric = set(range(1, len(headers)))
    return h.section(title, verdict + h.table(headers, rows, numeric=numeric))


def duplicates(r: dict[str, Any]) -> str:
    """Exact and near duplicates, label conflicts and the leakage check, with examples."""
    d = r["duplicates"]
    near, leak = d["near"], d["leakage"]
    text = (
        f"<p>Exact duplicates removed: <b>{escape(d['exact']['removed'])}</b>. Near duplicates "
        f"(MinHash LSH, Jaccard &ge; {escape(near['threshold'])}, action {escape(near['action'])}): "
        f"<b>{escape(near['pairs'])}</b> pairs in <b>{escape(near['clusters'])}</b> clusters, "
        f"<b>{escape(near['removed'])}</b> rows removed. Texts with conflicting labels: "
        f"<b>{escape(d['conflicting_label_groups'])}</b>.</p>"
    )
    body = [
        text,
        h.notice(
            f"Leakage check: {leak['pairs']} near-duplicate pairs straddle splits "
            f"({leak.get('checked_rows', 0)} validation/test rows checked)",
            "warn" if leak["pairs"] else "ok",
        ),
    ]
    if d["exact"]["examples"]:
        rows = [[x["kept"], x["removed"], x["text"]] for x in d["exact"]["examples"]]
        body.append(h.table(["kept", "removed", "text"], rows))
    if near["examples"]:
        rows = [
            [
                x["size"],
                f"{x['kept']}: {x['text']}",
                " | ".join(f"{o['source']}: {o['text']}" for o in x["others"]),
            ]
            for x in near["examples"]
        ]
        body.append(h.table(["cluster size", "kept", "near copies"], rows, numeric={0}))
    return h.section("Duplicates and leakage", "".join(body))


def pii(r: dict[str, Any]) -> str:
    """What the personal-data scrubber found and replaced."""
    p = r["pii"]
    if not p["enabled"]:
        return h.section("Personal data", h.paragraph("PII scrubbing is off."))
    body = [h.paragraph(f"{p['rows']} rows had personal data replaced by placeholders.")]
    body.append(
        h.bar_chart(p["counts"], title="found, by type") if p["counts"] else h.paragraph("None found.")
    )
    if p["examples"]:
        body.append(h.table(["type", "found (masked)"], [[x["type"], x["found"]] for x in p["examples"]]))
    return h.section("Personal data", "".join(body))


def diversity(r: dict[str, Any]) -> str:
    """Vocabulary size, distinct-n and top words per split."""
    rows = [
        [
            k,
            v["vocab_size"],
            v["tokens"],
            v["distinct_1"],
            v["distinct_2"],
            ", ".join(w for w, _ in v["top_words"][:10]),
        ]
        for k, v in r["diversity"].items()
    ]
    headers = ["split", "vocabulary", "tokens", "distinct-1", "distinct-2", "top words"]
    return h.section("Diversity", h.table(headers, rows, numeric={1, 2, 3, 4}))


def kept(r: dict[str, Any]) -> str:
    """Sample rows that made it into the splits."""
    rows = [[x.get("split", ""), x["source"], _brief(x)] for x in r["examples"]["kept"]]
    return h.section("Examples of kept rows", h.table(["split", "source", "row"], rows))


def removed(r: dict[str, Any]) -> str:
    """Sample rows removed by each step, with the reason."""
    parts = [
        h.section(
            step,
            h.table(
                ["source", "reason", "row"],
                [[x["source"], x["reason"], json.dumps(x["row"], ensure_ascii=False)[:400]] for x in rows],
            ),
            level=3,
        )
        for step, rows in r["examples"]["removed"].items()
    ]
    return h.section("Examples of removed rows", "".join(parts))


def _brief(x: dict[str, Any]) -> str:
    if "messages" in x:
        return " | ".join(f"{m['role']}: {m['content']}" for m in x["messages"])
    label = x.get("label", "")
    if isinstance(label, list):  # a label set
        label = ", ".join(map(str, label))
    return f"[{label}] {x.get('text', '')}"
