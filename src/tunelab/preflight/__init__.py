"""Preflight: everything about a schema-valid recipe that can be known without training.

``check(recipe)`` returns ``(problems, notes)``: problems are what would make a stage fail (a data
file that is not there, a metric the task does not produce, an encoder for sft...), each written
``key.path (line N): message`` like a schema error; notes are what could not be checked (a hub id
while offline) or is worth a look. ``tunelab validate`` runs it after the schema passes.
"""

from __future__ import annotations

import os

from tunelab.config import Recipe
from tunelab.preflight import data, metrics, model, names
from tunelab.preflight.context import Context, key_lines, prediction_kind

CHECKS = {"data": data.check, "model": model.check, "names": names.check, "metrics": metrics.check}

__all__ = ["CHECKS", "check", "key_lines", "prediction_kind"]


def check(recipe: Recipe, lines: dict[str, int] | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) of ``recipe``; ``lines`` maps key paths to YAML lines (see :func:`key_lines`)."""
    ctx = Context.build(recipe, lines)
    for name, run in CHECKS.items():
        try:
            run(ctx)
        except Exception as exc:  # a bug in one check must not hide what the others found
            if os.environ.get("TUNELAB_DEBUG"):
                raise
            ctx.findings.note("<preflight>", f"the {name} checks stopped early: {type(exc).__name__}: {exc}")
    return ctx.findings.problems, ctx.findings.notes
