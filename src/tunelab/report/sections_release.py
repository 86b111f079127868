"""Before release: what the export wrote (files, sizes, checks) and the fairness audit (counterfactual
figures, group figures, gates, and the data and model cards)."""

from __future__ import annotations

from typing import Any

from tunelab import html as h
from tunelab.html import escape
from tunelab.report import markdown
from tunelab.report.common import Run, attempt, f, figure, items, kv, link, mapping, num, scalars, size

MAX_FILES = 60
COUNTERFACTUAL = ("flip_rate", "mean_shift", "logprob_shift")


def export(run: Run) -> str:
    m = run.object("export/manifest.json")
    settings = mapping(m.get("settings"))
    facts = [
        ("base model", m.get("base_model")),
        ("adapter", m.get("adapter")),
        ("task", m.get("task")),
        ("created", m.get("created")),
        *((k, v if not isinstance(v, list) else ", ".join(map(str, v))) for k, v in settings.items()),
    ]
    checks, gguf = _checks(mapping(m.get("verify")))
    side = [checks, attempt(run, _files, m)]
    evaluation = mapping(m.get("evaluation"))
    if evaluation:
        rows = [(k, figure(v)) for k, v in evaluation.items() if num(v) is not None]
        side.append(kv(rows, "test figures of the exported model"))
    facts_table = kv([(k, v) for k, v in facts if v is not None], "export")
    return h.row(facts_table, f"<div>{''.join(side)}</div>") + gguf


def _files(run: Run, m: dict[str, Any]) -> str:
    """Each exported folder's files and total size; every file (size, hash) in a collapsed list."""
    hashes = mapping(m.get("files"))
    if not hashes:
        return h.paragraph("The export manifest lists no files.")
    folders: dict[str, list[int]] = {}
    rows, total, missing = [], 0, 0
    for rel, sha in hashes.items():
        p = run.path(f"export/{rel}")
        n = p.stat().st_size if p.is_file() else None
        total += n or 0
        missing += n is None
        top = rel.split("/", 1)[0] + "/" if "/" in rel else rel
        acc = folders.setdefault(top, [0, 0, 0])
        acc[0], acc[1], acc[2] = acc[0] + 1, acc[1] + (n or 0), acc[2] + (n is None)
        if len(rows) < MAX_FILES:
            rows.append([rel, "missing" if n is None else size(n), str(sha)[:16]])
    summary = h.table(
        ["folder", "files", "size"],
        [[k, c, size(b) if gone < c else "missing"] for k, (c, b, gone) in folders.items()],
        numeric=[1, 2],
        caption=f"{len(hashes)} files, {size(total)}",
    )
    listing = h.table(["file", "size", "sha256 (start)"], rows, numeric=[1])
    more = f" (the first {MAX_FILES})" if len(hashes) > MAX_FILES else ""
    parts = [summary, f"<details><summary>every file, with its hash{more}</summary>{listing}</details>"]
    if missing:
        parts.append(h.notice(f"{missing} listed file(s) are not in export/ any more"))
    return "".join(parts)


def _checks(verify: dict[str, Any]) -> tuple[str, str]:
    """(the export's checks: merge logit difference, int8 quality change; each GGUF loaded back)."""
    rows = list(scalars(verify.get("merge"), "merge.", 1))
    int8 = mapping(verify.get("int8"))
    rows += [(f"int8 {k} change", v) for k, v in scalars(int8.get("change"), "", 1)]
    if num(int8.get("speedup")) is not None:
        rows.append(("int8 speedup", int8["speedup"]))
    rows += [(f"size: {k.replace('_', ' ')}", size(v)) for k, v in scalars(int8.get("bytes"), "", 1)]
    table = kv(rows, "checks") if rows else ""
    gguf = [mapping(g) for g in items(verify.get("gguf"))]
    if not gguf:
        return table, ""
    cols = list(dict.fromkeys(k for g in gguf for k, v in g.items() if not isinstance(v, dict | list)))[:8]
    cap = "GGUF files, each loaded back and compared with the merged model"
    return table, h.table(cols, [[f(g.get(c)) for c in cols] for g in gguf], caption=cap)


def fairness(run: Run) -> str:
    parts = []
    if run.has("audit/fairness.json"):
        parts.append(attempt(run, _fairness))
    for rel, title in (("audit/data_card.md", "Data card"), ("audit/model_card.md", "Model card")):
        if run.has(rel):
            parts.append(attempt(run, _card, rel, title))
    if not parts:
        return h.notice("audit/fairness.json and the cards are missing")
    parts.append(link("audit/index.html", run, "fairness audit"))
    return "".join(parts)


def _fairness(run: Run) -> str:
    fa = run.object("audit/fairness.json")
    parts = []
    gates = mapping(fa.get("gates"))
    if "passed" in gates:
        checked = ", ".join(map(str, items(gates.get("checked")))) or "none configured"
        if gates["passed"]:
            parts.append(h.notice(f"fairness gates passed (checked: {checked})", "ok"))
        else:
            breaches = [str(b) for b in items(gates.get("breaches"))] or ["(no breach recorded)"]
            parts.append(h.notice("fairness gates FAILED: " + "; ".join(breaches)))
    parts += [h.notice(str(w)) for w in items(fa.get("warnings"))[:6]]
    facts = [(k, fa[k]) for k in ("split", "n_rows", "n_pairs") if k in fa]
    if facts:
        parts.append(h.cards((f(v), k.replace("_", " ")) for k, v in facts))
    parts.append(_counterfactual(mapping(fa.get("counterfactual")), mapping(fa.get("base"))))
    if isinstance(fa.get("groups"), dict):
        parts.append(_groups(fa["groups"]))
    return "".join(parts)


def _counterfactual(cf: dict[str, Any], base: dict[str, Any]) -> str:
    if not cf:
        return ""
    names = [n for n in COUNTERFACTUAL if any(isinstance(mapping(c).get(n), dict) for c in cf.values())]
    rows = []
    for category, c in cf.items():
        c, b = mapping(c), mapping(base.get(category))
        row = [category, f(c.get("n_pairs"))]
        for n in names:
            row.append(figure(c.get(n)) if c.get(n) is not None else "-")
            if base:
                row.append(figure(b.get(n)) if b.get(n) is not None else "-")
        rows.append(row)
    headers = ["category", "pairs"]
    for n in names:
        headers += [n.replace("_", " "), f"{n.replace('_', ' ')} (base)"] if base else [n.replace("_", " ")]
    cap = "counterfactual swaps (value [bootstrap interval]); lower is fairer"
    return h.table(headers, rows, numeric=[1], caption=cap)


def _groups(g: dict[str, Any]) -> str:
    sizes = mapping(g.get("sizes"))
    acc = mapping(g.get("accuracy"))
    rows = []
    for name in dict.fromkeys([*sizes, *acc]):
        rows.append([name, f(sizes.get(name)), figure(acc.get(name)) if acc.get(name) is not None else "-"])
    table = h.table(["group", "rows", "accuracy"], rows, numeric=[1], caption="groups") if rows else ""
    diffs = [
        (k.replace("_", " "), f(g.get(k), 3))
        for k in ("demographic_parity_difference", "equalized_odds_difference")
        if k in g
    ]
    parts = [h.row(table, h.cards((v, k) for k, v in diffs) if diffs else "")]
    if items(g.get("insufficient")):
        parts.append(h.paragraph("Too small to judge: " + ", ".join(map(str, g["insufficient"]))))
    return "".join(parts)


def _card(run: Run, rel: str, title: str) -> str:
    text = run.text(rel)
    body = markdown.to_html(text)
    return (
        f"<details class='card-md'><summary>{escape(title)} (<code>{escape(rel)}</code>)</summary>"
        f"<div class='md'>{body}</div></details>"
    )
