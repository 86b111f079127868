"""The report stage: render ``report.html`` from whatever the run directory holds."""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe
from tunelab.runs import MANIFEST, MissingArtifactError, RunDir, StageResult, atomic_write_text

OUTPUT = "report.html"


def run(recipe: Recipe, run_dir: RunDir) -> StageResult:
    """Write ``report.html`` at the run-directory root; an error when no stage has run yet."""
    from tunelab.report.config import ReportConfig
    from tunelab.report.page import render

    records = _records(run_dir)
    if not any(r.get("status") == "done" for r in records.values()):
        where = run_dir.root / MANIFEST
        found = "no manifest" if not where.is_file() else "no finished stage in the manifest"
        raise MissingArtifactError(
            f"nothing to report in {run_dir.root} ({found}): run `tunelab run RECIPE` (or a stage) first"
        )
    cfg = getattr(recipe, "report", None) or ReportConfig()  # a recipe model built before it registered
    page, missing = render(run_dir.root, title=cfg.title, examples=cfg.examples, samples=cfg.samples)
    atomic_write_text(run_dir.path(OUTPUT), page)
    done = sorted(k for k, r in records.items() if r.get("status") == "done")
    return StageResult(
        "report",
        metrics={
            "stages": ", ".join(done),
            "not_run": ", ".join(missing) or "none",
            "bytes": len(page.encode()),
        },
        artifacts=[OUTPUT],
    )


def upstream(recipe: Recipe) -> dict[str, Any]:
    """Every other stage's record (fingerprint and run id; status and start when not done): a stage
    that reran, failed or ran for the first time makes the report stale."""
    records = _records(RunDir(recipe.run_dir_path()))
    out = {}
    for name, r in sorted(records.items()):
        done = r.get("status") == "done"
        out[name] = [r.get("fingerprint"), r.get("run_id")] if done else [r.get("status"), r.get("started")]
    return {"reported_stages": out}


def _records(run_dir: RunDir) -> dict[str, dict[str, Any]]:
    """The manifest's stage records, the report's own left out; none when there is no readable manifest."""
    if not (run_dir.root / MANIFEST).is_file():
        return {}
    try:
        stages = run_dir.read_manifest().get("stages")
    except (OSError, ValueError):
        return {}
    if not isinstance(stages, dict):
        return {}
    return {k: v for k, v in stages.items() if k != "report" and isinstance(v, dict)}
