"""``generate/index.html``: what was generated, how diverse and how good, the sweep, synthetic data.

One self-contained page built from the stage's own JSON files with the shared HTML helpers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelab import html as h
from tunelab.runs import read_jsonl

SAMPLES_SHOWN = 12


def _load(folder: Path, name: str) -> Any:
    path = folder / name
    if not path.is_file():
        return None
    return read_jsonl(path) if name.endswith(".jsonl") else json.loads(path.read_text(encoding="utf-8"))


def render(folder: Path, title: str) -> str:
    """The page for the files in ``folder`` (``generate/`` of a run)."""
    div, sweep, report = _load(folder, "diversity.json"), _load(folder, "sweep.json"), None
    report = _load(folder, "synthetic_report.json")
    samples = _load(folder, "samples.jsonl") or []
    body = [_summary(div, report)]
    if div:
        body.append(h.section("Diversity and quality", _diversity(div), id="diversity"))
    if sweep:
        svg = (folder / "sweep.svg").read_text(encoding="utf-8") if (folder / "sweep.svg").is_file() else ""
        body.append(h.section("Sweep", _sweep(sweep, svg), id="sweep"))
    if samples:
        body.append(h.section("Samples", _samples(samples), id="samples"))
    if report:
        body.append(h.section("Synthetic data", _synthetic(report), id="synthetic"))
    nav = [
        (i, t)
        for i, t in (
            ("diversity", "Diversity"),
            ("sweep", "Sweep"),
            ("samples", "Samples"),
            ("synthetic", "Synthetic"),
        )
        if f"id='{i}'" in "".join(body)
    ]
    return h.page(title, "".join(body), subtitle="tunelab generate", nav=nav)


def _summary(div: dict | None, report: dict | None) -> str:
    items: list[tuple[Any, str]] = []
    if div:
        items += [(h.fmt(div.get("tokens_per_s"), 1), "new tokens/s"), (div.get("new_tokens"), "new tokens")]
        within = div.get("within") or {}
        items += [(h.fmt(within.get("distinct_2"), 3), "distinct-2 within a prompt")]
        items += [(h.fmt((div.get("quality") or {}).get("perplexity"), 3), "perplexity under the base model")]
    if report:
        items.append((f"{report.get('kept')} / {report.get('requested')}", "synthetic rows kept / asked"))
    return h.cards(items) if items else h.paragraph("Nothing was generated.")


def _diversity(div: dict) -> str:
    within, across = div.get("within") or {}, div.get("across") or {}
    rows = [(name, h.fmt(within.get(name), 4), h.fmt(across.get(name), 4)) for name in within]
    quality = div.get("quality") or {}
    q = [(k, h.fmt(v, 4)) for k, v in quality.items()]
    decoding = ", ".join(
        f"{k}={v}" for k, v in (div.get("decoding") or {}).items() if v not in (None, [], "")
    )
    return (
        h.paragraph(f"Decoding: {decoding}.")
        + h.table(["metric", "within a prompt's samples", "across all outputs"], rows, {1, 2})
        + h.table(["quality", "value"], q, {1})
    )


def _sweep(sweep: dict, svg: str) -> str:
    rows = sweep.get("rows") or []
    front = set(sweep.get("pareto_front") or [])
    keys = [
        k
        for k in ("temperature", "top_p", "min_p", "distinct_2", "self_bleu", "perplexity", "rouge_l")
        if any(k in r for r in rows)
    ]
    table = h.table(
        [*keys, "Pareto front"],
        [[h.fmt(r.get(k), 4) for k in keys] + ["yes" if i in front else ""] for i, r in enumerate(rows)],
        range(len(keys)),
    )
    target = sweep.get("target")
    note = h.notice(target["reason"], "info") if target and target.get("reason") else ""
    return note + svg + table  # the SVG is ours (escaped labels), written by the same stage


def _samples(samples: list[dict]) -> str:
    rows = []
    for s in samples[:SAMPLES_SHOWN]:
        outs = " ‖ ".join(x["text"] for x in s.get("samples", []))
        rows.append((s.get("prompt", ""), s.get("reference") or "", outs))
    more = (
        f" (first {SAMPLES_SHOWN} of {len(samples)}; all in samples.jsonl)"
        if len(samples) > SAMPLES_SHOWN
        else ""
    )
    return h.paragraph(f"Samples per prompt, separated by ‖{more}.") + h.table(
        ["prompt", "reference", "samples"], rows
    )


def _synthetic(report: dict) -> str:
    dropped = report.get("dropped") or {}
    state = h.notice(report.get("reason") or "", "ok" if report.get("complete") else "warn")
    chart = h.bar_chart({k: v for k, v in dropped.items() if v}, title="candidates dropped, by filter")
    facts = [
        ("kind", report.get("kind")),
        ("produced", report.get("produced")),
        ("kept", report.get("kept")),
        ("rounds", report.get("rounds")),
    ]
    return state + h.table(["", ""], facts, {1}) + chart
