"""The run as a whole: the overview (what, when, stages, headline test figures) and the manifest
(versions, commit, input hashes, stage records and timings)."""

from __future__ import annotations

import json
from typing import Any

from tunelab import html as h
from tunelab.html import escape
from tunelab.report.common import STAGE_COMMANDS, Problem, Run, f, figure_cards, kv, mapping, num

ORDER = ("data", "train", "evaluate", "explain", "generate", "export", "audit")
SUMMARY_KEYS = 4  # headline figures of a stage's manifest summary shown in the overview


def stage_names(run: Run) -> list[str]:
    """tunelab's stages in pipeline order, then any other stage the manifest records (plug-ins)."""
    return [*ORDER, *(s for s in run.stages() if s not in ORDER)]


def headline(run: Run) -> tuple[str, dict[str, Any]]:
    """(split, figures): eval.json's figures with intervals (and its calibration error), else the
    evaluate stage's summary in the manifest."""
    try:
        ev = run.object("metrics/eval.json") if run.has("metrics/eval.json") else {}
    except Problem:
        ev = {}
    split = str(ev.get("split") or run.setting("evaluate", "split") or "test")
    figs = {k: v for k, v in ev.items() if isinstance(v, dict) and num(v.get("value")) is not None}
    if "ece" in ev and num(ev["ece"]) is not None:
        figs["ece"] = ev["ece"]
    if not figs:
        summary = mapping(run.record("evaluate").get("summary"))
        figs = {k: v for k, v in summary.items() if num(v) is not None}
    return split, figs


def overview(run: Run) -> str:
    m, rec = run.manifest, run.recipe
    adapter = mapping(mapping(rec.get("model")).get("adapter")).get("method")
    adapter = adapter if adapter not in (None, "none") else ("none (full fine-tune)" if rec else "?")
    facts = [
        ("run", run.setting("run", "name") or run.root.name),
        ("task", m.get("task") or rec.get("task") or "?"),
        ("base model", m.get("model") or run.setting("model", "name") or "?"),
        ("adapter", adapter),
        ("seed", m.get("seed", run.setting("run", "seed"))),
        ("created", m.get("created", "?")),
        ("last stage finished", _last_finished(run) or "-"),
        ("run directory", str(run.root)),
    ]
    parts = [h.notice(p) for p in run.problems]
    split, figs = headline(run)
    cards = figure_cards((v, f"{split} {k}") for k, v in list(figs.items())[:6]) if figs else ""
    parts.append(h.row(kv(facts), f"<div>{cards}</div>"))
    parts.append(h.section("Stages", _stage_table(run), level=3))
    return "".join(parts)


def _last_finished(run: Run) -> str | None:
    times = [str(r["finished"]) for r in run.stages().values() if r.get("finished")]
    return max(times) if times else None


def _stage_table(run: Run) -> str:
    rows = []
    for name in stage_names(run):
        r = run.record(name)
        status = str(r.get("status") or "not run")
        if status == "done":
            summary = mapping(r.get("summary"))
            shown = [(k, v) for k, v in summary.items() if num(v) is not None or isinstance(v, str)]
            note = ", ".join(f"{k} {f(v)}" for k, v in shown[:SUMMARY_KEYS])
        elif status == "failed":
            note = str(r.get("error") or "")[:160]
        elif status == "running":
            note = "running, or interrupted"
        else:
            note = STAGE_COMMANDS.get(name, f"tunelab {name} RECIPE")
        seconds = num(r.get("seconds"))
        rows.append(
            [name, status, str(r.get("started") or "-"), "-" if seconds is None else f(seconds, 3), note]
        )
    status_col = {"done": "ok", "failed": "warn"}
    html = h.table(["stage", "status", "started", "seconds", "headline / error / command"], rows, numeric=[3])
    for s, cls in status_col.items():  # colour the status cells
        html = html.replace(f"<td>{s}</td>", f"<td class='st-{cls}'>{s}</td>")
    return html


def manifest(run: Run) -> str:
    m = run.manifest
    if not m:
        raise Problem(run.problems[0] if run.problems else "manifest.json is empty")
    env = mapping(m.get("environment"))
    versions = mapping(env.get("versions"))
    rows = [
        ("git commit", env.get("git_commit") or "unknown (not a git checkout)"),
        ("python", env.get("python", "?")),
        ("platform", env.get("platform", "?")),
        *((f"{k}", v if v is not None else "not installed") for k, v in versions.items()),
    ]
    parts = [h.row(kv(rows, "environment"), _timings(run))]
    records = []
    for name, r in run.stages().items():
        records.append(
            [
                name,
                r.get("status", "?"),
                r.get("fingerprint") or "-",
                r.get("run_id") or "-",
                r.get("started") or "-",
                r.get("finished") or "-",
                f(num(r.get("seconds")), 3),
            ]
        )
    if records:
        headers = ["stage", "status", "fingerprint", "run id", "started", "finished", "seconds"]
        parts.append(h.table(headers, records, numeric=[6], caption="stage records"))
    inputs = mapping(m.get("inputs"))
    if inputs:
        rows = [(k, v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in inputs.items()]
        parts.append(
            "<table><caption>inputs (outside files: SHA-256; upstream records: fingerprint, run id)"
            "</caption><tr><th>input</th><th>hash</th></tr>"
            + "".join(f"<tr><td>{escape(k)}</td><td><code>{escape(v)}</code></td></tr>" for k, v in rows)
            + "</table>"
        )
    return "".join(parts)


def _timings(run: Run) -> str:
    secs = {k: s for k, r in run.stages().items() if (s := num(r.get("seconds"))) is not None}
    return h.bar_chart(secs, title="seconds per stage", width=380) if secs else ""
