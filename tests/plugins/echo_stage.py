"""A stage from a module of its own: the only file it takes to add ``tunelab echo`` to the pipeline.

It owns a recipe section (``echo:``), needs the evaluate stage's outputs and writes ``echo/``.
"""

from __future__ import annotations

import json

from pydantic import Field

from tunelab.config.base import Section
from tunelab.runs import StageResult, atomic_write_json
from tunelab.stages import Option, Stage, register


class EchoConfig(Section):
    greeting: str = Field("hello", description="written into echo/summary.json")
    fail: bool = Field(False, description="raise instead of writing (tests a failed stage)")


def run(recipe, run_dir, shout: bool = False) -> StageResult:
    cfg = recipe.echo
    if cfg.fail:
        raise RuntimeError("echo was told to fail")
    accuracy = json.loads((run_dir.metrics / "eval.json").read_text())["accuracy"]["value"]
    greeting = cfg.greeting.upper() if shout else cfg.greeting
    atomic_write_json(run_dir.path("echo", "summary.json"), {"greeting": greeting, "accuracy": accuracy})
    with run_dir.path("echo", "calls.log").open("a") as fh:  # counts real runs, not skips
        fh.write("ran\n")
    return StageResult("echo", metrics={"greeting": greeting, "accuracy": accuracy}, artifacts=["echo/"])


STAGE = register(
    Stage(
        name="echo",
        run=run,
        help="Echo the test accuracy with a greeting (a test plug-in).",
        reads=("echo",),
        needs=("evaluate",),
        outputs=("echo/summary.json",),
        section=EchoConfig,
        options=(Option("shout", False, "upper-case the greeting"),),
    )
)
