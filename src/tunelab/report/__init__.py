"""The report stage: one self-contained page, ``report.html`` at the run-directory root, gathering
every stage's outputs (data, training, evaluation, explanations, generation, export, fairness and
the manifest), with a line for each stage that has not run saying which command produces it.

It reads the other stages' outputs from files only. Its inputs are every other stage's record
(fingerprint, run id) in the manifest, so the page is rendered again whenever any stage reran.
"""

from __future__ import annotations

from tunelab.report.config import ReportConfig
from tunelab.stages import Stage, register

STAGE = register(
    Stage(
        name="report",
        run="tunelab.report.stage:run",
        help="Gather the whole run into one self-contained page: report.html.",
        reads=("run", "task", "report"),
        needs=(),
        outputs=("report.html",),
        section=ReportConfig,
        inputs="tunelab.report.stage:upstream",
    )
)

__all__ = ["STAGE", "ReportConfig"]
