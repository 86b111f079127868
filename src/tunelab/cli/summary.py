"""The short summary a pipeline verb ends with, and the data stage's warnings after it.

Built from the stages' :class:`~tunelab.runs.StageResult` objects alone (a skipped stage brings
the figures its manifest record kept), so it reads the same for a fresh run and a rerun. Every
cell is a :class:`rich.text.Text`: nothing from the recipe or the data is parsed as markup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from tunelab.cli.common import console, say

DATA_REPORT = "data/data_report.html"
MAX_WARNINGS = 10
BASELINE_KEYS = ("vs_baseline", "baseline_error")  # the evaluate stage's verdict on its TF-IDF baseline


def summary_rows(results: Sequence[Any]) -> list[tuple[str, str]]:
    """(what, figure) rows: data counts and splits, training, headline metrics with intervals."""
    rows: list[tuple[str, str]] = []
    for result in results:
        m = result.metrics or {}
        if result.stage == "data":
            rows += _data_rows(m)
        elif result.stage == "train":
            rows += _train_rows(m)
        elif result.stage == "explain":
            rows += _explain_rows(m)
        prefix = "" if result.stage == "evaluate" else f"{result.stage} "
        for name, value in m.items():
            if result.stage == "evaluate" and name in BASELINE_KEYS:
                continue  # the verdict is a sentence of its own, after the table (baseline_verdict)
            if isinstance(value, dict) and "value" in value:
                rows.append((f"{prefix}{name}", _interval(value)))
            elif result.stage == "evaluate" and isinstance(value, float):
                rows.append((name, f"{value:.4f}"))  # a headline figure without an interval (ece)
            elif result.stage == "evaluate" and name == "calibration" and isinstance(value, str):
                rows.append((name, value))  # temperature scaling: ECE and log loss before -> after
    return rows


def _data_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, what in (("rows_read", "rows read"), ("rows_kept", "kept"), ("rows_quarantined", "quarantined")):
        if isinstance(m.get(key), int):
            rows.append((what, f"{m[key]:,}"))
    sizes = {s: m.get(f"{s}_rows") for s in ("train", "validation", "test")}
    splits = [f"{s} {n:,}" for s, n in sizes.items() if isinstance(n, int)]
    if splits:
        rows.append(("splits", " / ".join(splits)))
    share = m.get("train_over_max_length")  # counted with the model's tokenizer (tasks with text rows)
    if isinstance(share, int | float):
        rows.append(("over max_length", f"{share:.1%} of train texts"))
    return rows


def _train_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    steps, seconds = m.get("steps"), m.get("seconds")
    if not isinstance(steps, int):
        return []
    took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    rows = [("training", f"{steps:,} steps{took}")]
    windows, examples = m.get("train_windows"), m.get("train_examples")
    if isinstance(windows, int) and isinstance(examples, int):  # model.long_text: chunk
        rows.append(("train windows", f"{windows:,} windows of {examples:,} rows"))
    return rows


def _explain_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    if isinstance(m.get("examples"), int):
        rows.append(("explained", f"{m['examples']:,} examples"))
    best, comp, rand = m.get("most_faithful"), m.get("comprehensiveness"), m.get("random_comprehensiveness")
    if best and isinstance(comp, int | float) and isinstance(rand, int | float):
        rows.append(("most faithful", f"{best} (comprehensiveness {comp:.3f}, random {rand:.3f})"))
    if isinstance(m.get("rules_fidelity"), int | float):
        rows.append(("rules fidelity", f"{m['rules_fidelity']:.3f}"))
    return rows


def _interval(v: dict[str, Any]) -> str:
    value, low, high = v.get("value"), v.get("low"), v.get("high")
    if not isinstance(value, int | float):
        return str(value)
    bounds = isinstance(low, int | float) and isinstance(high, int | float)
    ci = f"  [{low:.3f}, {high:.3f}]" if bounds else ""
    return f"{value:.4f}{ci}"


def baseline_verdict(results: Sequence[Any]) -> tuple[str, bool] | None:
    """(the evaluate stage's sentence on the TF-IDF baseline, whether it is a warning), or None.

    A warning unless the tuned model beats the baseline outside the noise; one when no baseline
    could be fitted."""
    for result in results:
        m = result.metrics or {}
        if result.stage != "evaluate":
            continue
        v = m.get("vs_baseline")
        if isinstance(v, dict) and isinstance(v.get("verdict"), str):
            return v["verdict"], v.get("outcome") != "beats"
        if isinstance(m.get("baseline_error"), str):
            return f"no TF-IDF baseline: {m['baseline_error']}", True
    return None


def collect_warnings(results: Sequence[Any], run_dir: Path) -> list[str]:
    """Every stage's warnings (``metrics["warnings"]``); a skipped data stage's come from its
    data_report.json. Another stage's are prefixed with its name. A tuned model that does not beat
    the TF-IDF baseline is one of the evaluate stage's."""
    out: list[str] = []
    for result in results:
        found = (result.metrics or {}).get("warnings")
        if result.stage == "data" and found is None:
            found = _report_warnings(run_dir)
        prefix = "" if result.stage == "data" else f"{result.stage}: "
        out += [f"{prefix}{w}" for w in found or [] if str(w).strip()]
        verdict = baseline_verdict([result]) if result.stage == "evaluate" else None
        if verdict and verdict[1]:
            out.append(f"evaluate: {verdict[0]}")
    return out


def _report_warnings(run_dir: Path) -> list[Any]:
    try:
        report = json.loads((run_dir / "data" / "data_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = report.get("warnings") if isinstance(report, dict) else None
    return found if isinstance(found, list) else []


def show_summary(results: Iterable[Any], run_dir: Path) -> None:
    """The summary table (if any stage brought figures), where things are, then the warnings."""
    if os.environ.get("RANK", "0") != "0":
        return  # under accelerate launch, rank 0 speaks for the run
    results = list(results)
    rows = summary_rows(results)
    if rows:
        table = Table(
            title=Text("summary", style="bold"),
            title_justify="left",
            show_header=False,
            box=None,
            padding=(0, 3, 0, 2),
            pad_edge=False,
        )
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        for what, figure in rows:
            table.add_row(Text(what), Text(figure))
        console.print(table)
    verdict = baseline_verdict(results)
    if verdict and not verdict[1]:  # whole on its own line; one that is a warning comes with the warnings
        say("baseline: ", verdict[0], highlight=False)
    # paths outside the table: printed whole on one line, never cut to the table's width
    say("run directory: ", (str(run_dir), "bold"), highlight=False)
    report = run_dir / DATA_REPORT
    if any(r.stage == "data" for r in results) and report.is_file():
        say("data report: ", (str(report), "bold"), highlight=False)
    for result in results:  # other stages' pages (explain/index.html, ..., the run's report.html last)
        for page in (a for a in getattr(result, "artifacts", None) or [] if a.endswith(".html")):
            path = run_dir / page
            if path.is_file() and path.resolve() != report.resolve():
                label = "run report" if result.stage == "report" else f"{result.stage} page"
                say(f"{label}: ", (str(path), "bold"), highlight=False)
    show_warnings(collect_warnings(results, run_dir))


def show_warnings(warnings: Sequence[str]) -> None:
    """A short "warnings" block: one yellow line each (at most ``MAX_WARNINGS``)."""
    if not warnings:
        return
    say(("warnings", "bold yellow"))
    for w in warnings[:MAX_WARNINGS]:
        say(("  - ", "yellow"), (" ".join(w.split()), "yellow"), highlight=False)
    if len(warnings) > MAX_WARNINGS:
        say((f"  ... and {len(warnings) - MAX_WARNINGS} more in {DATA_REPORT}", "yellow"))
