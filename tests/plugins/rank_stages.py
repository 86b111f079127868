"""Two toy stages for the multi-process test: one every rank runs, one only rank 0 runs.

Each manifest write is logged with the writing process's rank (``TUNELAB_TEST_LOG``), and each
stage call leaves a marker, so the test sees who ran what and who wrote the manifest.
"""

from __future__ import annotations

import os
from pathlib import Path

from tunelab.runs import RunDir, StageResult
from tunelab.stages import Stage, register

_write = RunDir.write_manifest


def _logged_write(self: RunDir, manifest: dict) -> None:
    with Path(os.environ["TUNELAB_TEST_LOG"]).open("a") as fh:
        fh.write(f"{os.environ.get('RANK', '0')}\n")
    _write(self, manifest)


RunDir.write_manifest = _logged_write  # type: ignore[method-assign]


def _mark(run_dir: RunDir, stage: str) -> None:
    run_dir.root.mkdir(parents=True, exist_ok=True)
    (run_dir.root / f"{stage}-rank{os.environ.get('RANK', '0')}").write_text("ran")


def prepare(recipe, run_dir: RunDir) -> StageResult:
    _mark(run_dir, "prepare")
    return StageResult("prepare", metrics={"rows": 3})


def everywhere(recipe, run_dir: RunDir) -> StageResult:
    if not (run_dir.root / "prepare-rank0").exists():  # rank 0's stage must be finished first
        raise RuntimeError("ran before the rank-0 stage finished")
    _mark(run_dir, "everywhere")
    return StageResult("everywhere", metrics={"rank": int(os.environ.get("RANK", "0"))})


register(Stage(name="prepare", run=prepare, help="rank 0 only", outputs=("prepare-rank0",)))
register(Stage(name="everywhere", run=everywhere, help="every rank", needs=("prepare",), all_ranks=True))
