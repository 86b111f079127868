"""``report.html``: one self-contained page (inline CSS and SVG, no script, nothing fetched) with a
section per stage that ran and, in place of each that did not, a line saying which command makes it.

Each section is a function of the :class:`~tunelab.report.common.Run`; a missing or malformed file
turns into a notice naming it, inside that section, and never costs the rest of the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tunelab import html as h
from tunelab.report import charts
from tunelab.report.common import Problem, Run, not_run
from tunelab.report.sections_insight import explanation, generation
from tunelab.report.sections_model import data, evaluation, training
from tunelab.report.sections_release import export, fairness
from tunelab.report.sections_run import manifest, overview

CSS = (
    "nav{position:sticky;top:0;background:#fff;padding:.4rem 0;border-bottom:1px solid #eee;z-index:1}"
    "section{margin-bottom:1.2rem}h3{margin:1.2rem 0 .4rem}"
    ".notrun{margin:1.2rem 0;font-size:.92rem}.notrun code{background:#fff8;padding:0 .2rem}"
    "td.st-ok{color:#276b27;font-weight:600}td.st-warn{color:#a33;font-weight:600}"
    ".ex{border:1px solid #e4e4e4;border-radius:6px;padding:.35rem .7rem;margin:.45rem 0}"
    ".exh{font-size:.82rem;color:#555;margin-bottom:.2rem}.bad{color:#a33;font-weight:600}"
    "details.card-md{border:1px solid #ddd;border-radius:6px;padding:.3rem .8rem;margin:.6rem 0}"
    "details.card-md summary{cursor:pointer;color:#246;font-weight:600}"
    ".md h4{font-size:1rem;margin:.8rem 0 .3rem}.md h5,.md h6{font-size:.92rem;margin:.6rem 0 .2rem}"
    "pre.fm{max-height:8rem}.row{align-items:flex-start}"
    "td{max-width:32rem;overflow-wrap:anywhere;white-space:pre-wrap}"
    ".card small{display:block;color:#666;font-size:.78rem;margin-top:-.1rem}"
    "table.kv th{font-weight:normal;color:#444;white-space:nowrap}caption{font-size:.85rem}"
) + charts.CSS


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor, title, the stage that produces it (None: the run itself),
    the files whose presence means the stage's outputs are there, and the function that renders it."""

    id: str
    title: str
    stage: str | None
    files: tuple[str, ...]
    render: Callable[[Run], str]


SECTIONS = (
    Section("overview", "Overview", None, (), overview),
    Section("data", "Data", "data", ("data/data_report.json",), data),
    Section(
        "training", "Training", "train", ("metrics/train_summary.json", "metrics/train_log.jsonl"), training
    ),
    Section("evaluation", "Evaluation", "evaluate", ("metrics/eval.json",), evaluation),
    Section("explanation", "Explanation", "explain", ("explain/examples.jsonl",), explanation),
    Section(
        "generation",
        "Generation",
        "generate",
        ("generate/samples.jsonl", "generate/diversity.json"),
        generation,
    ),
    Section("export", "Export", "export", ("export/manifest.json",), export),
    Section("fairness", "Fairness", "audit", ("audit/fairness.json", "audit/model_card.md"), fairness),
    Section("manifest", "Manifest", None, (), manifest),
)


def present(run: Run, s: Section) -> bool:
    """The section has something to show: its stage's outputs are there (a failed rerun keeps them)."""
    return not s.files or any(run.has(rel) for rel in s.files)


def body(run: Run, s: Section) -> str:
    """The section's HTML, or a notice naming the file it could not show."""
    try:
        inner = s.render(run)
    except Problem as exc:
        inner = h.notice(str(exc))
    except Exception as exc:  # one malformed artifact must not break the page
        inner = h.notice(f"{run.reading or 'an artifact'} could not be shown: {type(exc).__name__}: {exc}")
    rec = run.record(s.stage) if s.stage else {}
    if rec.get("status") == "failed":  # outputs of an earlier run, under a failed rerun
        inner = (
            h.notice(f"the latest {s.stage} run failed ({rec.get('error', '?')}); shown: its earlier outputs")
            + inner
        )
    return h.section(s.title, inner, id=s.id)


def render(
    root: Path, *, title: str | None = None, examples: int = 5, samples: int = 5
) -> tuple[str, list[str]]:
    """(the page, the stages with no outputs) of the run directory ``root``."""
    run = Run.open(root, examples, samples)
    parts, nav, missing = [], [], []
    for s in SECTIONS:
        if present(run, s):
            parts.append(body(run, s))
            nav.append((s.id, s.title))
        else:
            parts.append(not_run(s.stage or s.id, s.title, run.record(s.stage or s.id)))
            missing.append(s.stage or s.id)
    name = run.setting("run", "name") or root.name
    sub = " · ".join(
        str(x)
        for x in (
            run.manifest.get("task"),
            run.manifest.get("model"),
            f"created {run.manifest.get('created', '?')}",
        )
        if x
    )
    page = h.page(title or f"Run report: {name}", "".join(parts), subtitle=sub, nav=nav, css=CSS)
    return page, missing
