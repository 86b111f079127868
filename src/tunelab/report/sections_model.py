"""The core stages: data (rows kept and quarantined, duplicates, splits, label balance), training
(curves and summary) and evaluation (figures with intervals, confusion, calibration, base vs tuned)."""

from __future__ import annotations

from typing import Any

from tunelab import html as h
from tunelab.report import charts
from tunelab.report.common import Problem, Run, attempt, f, figure, interval, items, kv, link, mapping, num

DATA_CARDS = (
    ("rows_read", "rows read"),
    ("rows_kept", "kept"),
    ("rows_quarantined", "quarantined"),
    ("exact_duplicates", "exact duplicates"),
    ("near_duplicates", "near duplicates"),
    ("leakage_pairs", "pairs straddling splits"),
)
MAX_WARNINGS = 6
COUNTS = ("n", "n_examples", "scored_tokens", "split", "labels")  # eval.json keys that are not metrics


def data(run: Run) -> str:
    r = run.object("data/data_report.json")
    s = mapping(r.get("summary"))
    parts = []
    if s:
        ok = s.get("reconciles") is not False
        recon = (
            f"rows read {f(s.get('rows_read'))} = kept {f(s.get('rows_kept'))} + quarantined "
            f"{f(s.get('rows_quarantined'))}" + ("" if ok else " (does not reconcile)")
        )
        parts.append(h.notice(recon, "ok" if ok else "warn"))
        parts.append(h.cards((f(s[k]), label) for k, label in DATA_CARDS if k in s))
    warnings = [str(w) for w in items(r.get("warnings"))]
    parts += [h.notice(w) for w in warnings[:MAX_WARNINGS]]
    if len(warnings) > MAX_WARNINGS:
        parts.append(h.paragraph(f"... and {len(warnings) - MAX_WARNINGS} more warnings in the data report"))
    parts.append(_quarantine(r))
    parts.append(_splits(r))
    parts.append(link("data/data_report.html", run, "data report (sources, steps, lengths, PII, examples)"))
    return "".join(parts)


def _quarantine(r: dict[str, Any]) -> str:
    removed, reasons = mapping(r.get("removed_by_step")), mapping(r.get("top_reasons"))
    if not removed:
        return h.paragraph("No row was quarantined.")
    rows = []
    for step, n in removed.items():
        why = "; ".join(
            f"{x[0]} ({x[1]})"
            for x in items(reasons.get(step))
            if isinstance(x, list | tuple) and len(x) == 2
        )
        rows.append([step, n, why])
    return h.table(["step", "rows removed", "main reasons"], rows, numeric=[1], caption="quarantined rows")


def _splits(r: dict[str, Any]) -> str:
    splits, lengths = mapping(r.get("splits")), mapping(r.get("lengths"))
    if not splits:
        return ""
    unit = lengths.get("unit", "words")
    rows, balance = [], {}
    for name, sp in splits.items():
        sp, ln = mapping(sp), mapping(lengths.get(name))
        labels = {str(k): v for k, v in mapping(sp.get("labels")).items()}
        if labels:
            balance[str(name)] = labels
        shown = " · ".join(f"{k} {v}" for k, v in list(labels.items())[:8]) + (
            " ..." if len(labels) > 8 else ""
        )
        values = mapping(sp.get("label_values"))
        if values:
            shown = f"{f(values.get('min'))} to {f(values.get('max'))}, mean {f(values.get('mean'))}"
        rows.append(
            [name, f(sp.get("rows")), f(sp.get("groups")), f(ln.get("mean")), f(ln.get("p95")), shown]
        )
    headers = ["split", "rows", "groups", f"mean length ({unit})", "p95", "labels"]
    table = h.table(headers, rows, numeric=[1, 2, 3, 4], caption="splits")
    n_labels = len({k for b in balance.values() for k in b})
    chart = (
        h.grouped_bar_chart(balance, title="label balance per split", width=380) if 0 < n_labels <= 12 else ""
    )
    return h.row(table, chart)


def training(run: Run) -> str:
    has_summary, has_log = run.has("metrics/train_summary.json"), run.has("metrics/train_log.jsonl")
    if not (has_summary or has_log):
        raise Problem("metrics/train_summary.json and metrics/train_log.jsonl are missing")
    parts = []
    if has_summary:
        parts.append(attempt(run, _train_summary))
    if has_log:
        parts.append(attempt(run, _curves))
    return "".join(parts)


def _train_summary(run: Run) -> str:
    s = run.object("metrics/train_summary.json")
    params = mapping(s.get("parameters"))
    best = mapping(s.get("best_metric"))
    best_name = next((k for k in best if k != "step"), None)
    cards = [
        (f(s.get("steps")), "steps"),
        (f"{f(s.get('seconds'), 3)} s", "training time"),
        (f(s.get("train_tokens_per_s")), "tokens/s"),
        (f(s.get("precision")), "precision"),
    ]
    if params:
        cards.append(
            (f"{f(params.get('trainable'))} / {f(params.get('total'))}", "trainable / total parameters")
        )
    if best_name:
        cards.append((f(best[best_name]), f"best validation {best_name} (step {f(best.get('step'))})"))
    final = [(k, v) for k, v in mapping(s.get("final_validation")).items()]
    parts = [h.row(h.cards(cards), kv(final, "final validation") if final else "")]
    if s.get("stopped"):
        parts.append(h.notice(f"training stopped early: {s['stopped']}", "info"))
    if s.get("resumed_from_step") is not None:
        parts.append(h.notice(f"resumed from step {s['resumed_from_step']}", "info"))
    return "".join(parts)


def _curves(run: Run) -> str:
    log = run.jsonl("metrics/train_log.jsonl")
    train = [r for r in log if "validation" not in r]
    val = [
        (r.get("step"), mapping(r.get("validation"))) for r in log if isinstance(r.get("validation"), dict)
    ]
    loss = {"train": [(r.get("step"), r.get("loss")) for r in train if "loss" in r]}
    if any("loss" in v for _, v in val):
        loss["validation"] = [(step, v.get("loss")) for step, v in val if "loss" in v]
    charts_ = [h.line_chart(loss, title="loss", x_label="step", width=360, height=230)]
    lr = [(r.get("step"), r.get("lr")) for r in train if "lr" in r]
    if lr:
        charts_.append(
            h.line_chart({"learning rate": lr}, title="learning rate", x_label="step", width=300, height=230)
        )
    names = list(dict.fromkeys(k for _, v in val for k in v if k != "loss"))[:4]
    if names:
        series = {n: [(step, v.get(n)) for step, v in val if n in v] for n in names}
        charts_.append(h.line_chart(series, title="validation", x_label="step", width=360, height=230))
    stops = [r for r in log if r.get("stopped")]
    notes = [h.notice(f"step {r.get('step')}: stopped ({r['stopped']})", "info") for r in stops]
    return h.row(*charts_) + "".join(notes)


def evaluation(run: Run) -> str:
    ev = run.object("metrics/eval.json")
    rows = []
    for k, v in ev.items():
        if k in COUNTS:
            continue
        if isinstance(v, dict) and num(v.get("value")) is not None:
            rows.append([k, f(v), interval(v), f(v.get("confidence"), 3)])
        elif num(v) is not None:
            rows.append([k, f(v), "", ""])
    n = ev.get("n_examples", ev.get("n"))
    caption = f"{ev.get('split', 'test')} split" + (f", {n} examples" if n is not None else "")
    headers = ["metric", "value", "bootstrap interval", "confidence"]
    tables = [h.table(headers, rows, numeric=[1], caption=caption)]
    per_class = {k: mapping(v) for k, v in mapping(ev.get("per_class")).items()}
    if per_class:
        pc = [
            [k, f(v.get("precision")), f(v.get("recall")), f(v.get("f1")), f(v.get("support"))]
            for k, v in list(per_class.items())[:30]
        ]
        headers = ["label", "precision", "recall", "F1", "support"]
        tables.append(h.table(headers, pc, numeric=[1, 2, 3, 4], caption="per label"))
    parts = [h.row(*tables)]
    figures_ = []
    if ev.get("confusion_matrix") is not None:
        figures_.append(charts.confusion(ev["confusion_matrix"], [str(x) for x in items(ev.get("labels"))]))
    if run.has("metrics/predictions.jsonl"):
        figures_.append(attempt(run, _reliability))
    if figures_:
        parts.append(h.row(*figures_))
    samples = [mapping(x) for x in items(ev.get("samples"))[: run.samples]]
    if samples:
        rows = [[x.get("prompt", ""), x.get("reference", ""), x.get("generated", "")] for x in samples]
        parts.append(h.table(["prompt", "reference", "generated"], rows, caption="generated answers"))
    if run.has("metrics/comparison.json"):
        parts.append(h.section("Base vs fine-tuned", attempt(run, _comparison), level=3))
    return "".join(parts)


def calibration_points(rows: list[dict[str, Any]]) -> tuple[str, list[tuple[float, float]]]:
    """(what is binned, (confidence, hit) points) of predictions.jsonl rows: the top label's probability
    against being right (classification) or each label's probability against having it (multilabel)."""
    points: list[tuple[float, float]] = []
    for r in rows:
        p = num(r.get("probability"))
        if p is not None and "predicted" in r and "label" in r:
            points.append((p, float(str(r["predicted"]) == str(r["label"]))))
        elif isinstance(r.get("probabilities"), dict) and isinstance(r.get("labels"), list):
            gold = {str(x) for x in r["labels"]}
            points += [
                (q, float(k in gold)) for k, v in r["probabilities"].items() if (q := num(v)) is not None
            ]
    kind = "per-label probability" if rows and "probabilities" in rows[0] else "top-label confidence"
    return kind, points


def _reliability(run: Run) -> str:
    """Before / after temperature scaling from eval.json's bins when the run has them, else one
    diagram of predictions.jsonl's probabilities."""
    ev = run.object("metrics/eval.json") if run.has("metrics/eval.json") else {}
    cal = mapping(ev.get("calibration"))
    bins = mapping(cal.get("reliability"))
    if items(bins.get("before")) and items(bins.get("after")):
        t = f(cal.get("temperature"), 3)
        ece = [f(mapping(cal.get(k)).get("ece"), 3) for k in ("before", "after")]
        nll = [f(mapping(cal.get(k)).get("log_loss")) for k in ("before", "after")]
        return (
            charts.reliability(bins["before"], title=f"reliability (raw, T = 1): ECE {ece[0]}", size=290)
            + charts.reliability(
                bins["after"], title=f"reliability (calibrated, T = {t}): ECE {ece[1]}", size=290
            )
            + h.paragraph(
                f"Temperature scaling, fitted on validation: T = {t}; ECE {ece[0]} -> {ece[1]}, "
                f"log loss {nll[0]} -> {nll[1]}"
            )
        )
    kind, points = calibration_points(run.jsonl("metrics/predictions.jsonl"))
    if not points:
        return ""
    bins = charts.reliability_bins(points)
    title = f"reliability ({kind}; {len(points)} points, ECE {f(charts.ece(bins), 3)})"
    return charts.reliability(bins, title=title, size=290)


def _comparison(run: Run) -> str:
    c = run.object("metrics/comparison.json")
    metrics, paired = mapping(c.get("metrics")), mapping(c.get("paired_difference"))
    vs_baseline = mapping(c.get("paired_vs_baseline"))
    parts = []
    if c.get("verdict"):
        v = mapping(c["verdict"])
        parts.append(h.notice(str(v.get("sentence", "")), "ok" if v.get("beats_baseline") else "warn"))
    has_base = any("base" in mapping(m) for m in metrics.values())
    has_baseline = any("baseline" in mapping(m) for m in metrics.values())
    if metrics:
        rows = []
        for name, m in metrics.items():
            m, d, s = mapping(m), mapping(paired.get(name)), mapping(vs_baseline.get(name))
            row = [name]
            if has_base:
                row.append(figure(m.get("base")))
            if has_baseline:
                row.append(figure(m.get("baseline")))
            row.append(figure(m.get("tuned")))
            if has_base:
                better = "yes" if m.get("improved") else "no"
                prob = f(d.get("prob_b_better"), 3) if d else "-"
                row += [f(m.get("delta")), better, figure(d) if d else "-", prob]
            if has_baseline:
                row += [figure(s) if s else "-", "yes" if m.get("beats_baseline") else "no"]
            rows.append(row)
        headers = ["metric"] + (["base"] if has_base else []) + (["TF-IDF baseline"] if has_baseline else [])
        headers.append("fine-tuned")
        if has_base:
            headers += ["change", "improved", "paired change [interval]", "P(tuned better)"]
        if has_baseline:
            headers += ["paired change vs baseline [interval]", "beats baseline"]
        numeric = [i for i, x in enumerate(headers) if x in ("change", "P(tuned better)")]
        parts.append(h.table(headers, rows, numeric=numeric))
    if not has_base and (c.get("tuned") or metrics):
        parts.append(h.paragraph("The base model was not scored (evaluate.compare_base is off)."))
    parts.append(_baseline_line(mapping(c.get("baseline"))))
    if c.get("note"):
        parts.append(h.notice(str(c["note"]), "info"))
    return "".join(parts)


def _baseline_line(b: dict[str, Any]) -> str:
    """What the TF-IDF baseline was: model, chosen strength, vocabulary, fit time (or why none)."""
    if not b:
        return ""
    if b.get("error"):
        return h.notice(f"no TF-IDF baseline: {b['error']}")
    strength = next(((k, b[k]) for k in ("C", "alpha") if k in b), None)
    chosen = f"; {strength[0]} = {f(strength[1])} chosen by {b.get('selected_by', '?')}" if strength else ""
    threshold = f"; threshold {f(b['threshold'])}" if "threshold" in b else ""
    return h.paragraph(
        f"Baseline: {b.get('model', '?')}{chosen}{threshold}; vocabulary {f(b.get('vocabulary'))}; "
        f"fitted on {f(b.get('train_rows'))} train rows in {f(b.get('fit_seconds'), 3)} s."
    )
