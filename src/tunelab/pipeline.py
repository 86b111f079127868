"""The one executor of stages: fingerprint, skip or ``--force``, manifest record, rank-0-only writes.

Nothing here names a stage: every stage is run from its declaration (``tunelab.stages.Stage``).
A stage's fingerprint hashes the recipe sections it reads, the hashes of its outside inputs and,
for each stage it needs, that stage's fingerprint and run id as recorded in the manifest, so a
changed or rerun upstream stage makes every later stage stale without re-hashing any weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from tunelab.config import Recipe, dump_recipe
from tunelab.runs import MissingArtifactError, RunDir, StageResult, atomic_write_text
from tunelab.stages import Stage, get_stage


def open_run(recipe: Recipe, write: bool | None = None) -> RunDir:
    """The recipe's run directory, with the resolved recipe and the seed recorded (by rank 0)."""
    run_dir = RunDir(recipe.run_dir_path())
    if write if write is not None else _rank() == 0:
        run_dir.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir.path("recipe.yaml"), dump_recipe(recipe))
        run_dir.update_manifest(seed=recipe.run.seed, task=recipe.task, model=recipe.model.name)
    return run_dir


def run_stage(name: str, recipe: Recipe, force: bool = False, **options: Any) -> StageResult:
    """Run one stage (or skip it when its outputs are current); ``options`` are the stage's own."""
    stage = get_stage(name)
    bound = stage.bind(options)
    upstream(stage, RunDir(recipe.run_dir_path()))  # a missing upstream stops us before anything is written
    run_dir = open_run(recipe)
    if _world() == 1:
        return _run_main(stage, recipe, run_dir, force, bound, sync=lambda: None)
    if _rank() == 0:
        return _run_main(stage, recipe, run_dir, force, bound, sync=_barrier)
    return _follow(stage, recipe, run_dir, bound)


def run_pipeline(recipe: Recipe, force: bool = False, **options: Any) -> list[StageResult]:
    """Every stage the recipe lists, in order; each gets the options it declares (e.g. ``resume``)."""
    results = []
    for name in recipe.stages:
        own = {o.name for o in get_stage(name).options}
        results.append(run_stage(name, recipe, force=force, **{k: v for k, v in options.items() if k in own}))
    return results


def trained_model(recipe: Recipe) -> dict[str, Any]:
    """A stage ``inputs`` hook for stages that use the trained model but may also run without it
    (``--base``): the train stage's record (fingerprint, run id), so retraining makes them stale."""
    rec = RunDir(recipe.run_dir_path()).stage_record("train") or {}
    return {"trained_model": [rec.get("fingerprint"), rec.get("run_id")]}


def fingerprint(stage: Stage, recipe: Recipe, run_dir: RunDir, inputs: dict[str, Any]) -> str:
    """Hash of the sections ``stage`` reads, its outside inputs and its upstream stages' records."""
    dumped = recipe.model_dump(mode="json")
    key = {
        "stage": stage.name,
        "version": stage.version,
        "reads": {path: _lookup(dumped, path) for path in stage.reads},
        "inputs": inputs,
        "upstream": upstream(stage, run_dir),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def upstream(stage: Stage, run_dir: RunDir) -> dict[str, list[Any]]:
    """(fingerprint, run id) of each stage ``stage`` needs, from the manifest; a missing one is an error."""
    if not stage.needs:
        return {}
    has_manifest = (run_dir.root / "manifest.json").is_file()
    records = run_dir.read_manifest().get("stages", {}) if has_manifest else {}
    out = {}
    for need in stage.needs:
        rec = records.get(need) or {}
        if rec.get("status") != "done":
            raise MissingArtifactError(
                f"stage {stage.name!r} needs the {need!r} stage's outputs in {run_dir.root}: "
                f"run `tunelab {need} RECIPE` (or `tunelab run RECIPE`) first"
            )
        out[need] = [rec.get("fingerprint"), rec.get("run_id")]
    return out


def is_current(stage: Stage, run_dir: RunDir, fp: str) -> bool:
    return run_dir.is_done(stage.name, fp) and all(run_dir.path(p).exists() for p in stage.outputs)


def _run_main(
    stage: Stage,
    recipe: Recipe,
    run_dir: RunDir,
    force: bool,
    bound: dict[str, Any],
    sync: Callable[[], None],
) -> StageResult:
    """Decide (skip or run) and write the record: the only process, or rank 0 of several.

    ``sync`` is a barrier under ``accelerate launch``: rank 0 marks the stage running (or leaves a
    current record alone) before the first one, so the others read its decision (see :func:`_follow`).
    """
    inputs = stage.input_hashes(recipe)
    fp = fingerprint(stage, recipe, run_dir, inputs)
    if not force and not stage.reruns(bound) and is_current(stage, run_dir, fp):
        sync()
        sync()
        return _skipped(stage, run_dir)
    with run_dir.stage(stage.name, fp) as info:
        sync()  # the record now says "running": the others will run too
        result = stage.function()(recipe, run_dir, **bound)
        info.update(summary=_summary(result.metrics), artifacts=result.artifacts, inputs=inputs)
    sync()
    return result


def _follow(stage: Stage, recipe: Recipe, run_dir: RunDir, bound: dict[str, Any]) -> StageResult:
    """A rank other than 0: do what rank 0 decided, write nothing, meet it at the same two barriers."""
    _barrier()
    rec = run_dir.stage_record(stage.name) or {}
    if rec.get("status") == "done":  # rank 0 found it current
        _barrier()
        return _skipped(stage, run_dir)
    if not stage.all_ranks:
        _barrier()  # wait until rank 0 has written the outputs
        return StageResult(stage.name, metrics={"rank": _rank()}, skipped=True)
    result = stage.function()(recipe, run_dir, **bound)
    _barrier()
    return result


def _skipped(stage: Stage, run_dir: RunDir) -> StageResult:
    rec = run_dir.stage_record(stage.name) or {}
    return StageResult(
        stage.name, metrics=rec.get("summary", {}), artifacts=rec.get("artifacts", []), skipped=True
    )


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures worth keeping in the manifest (numbers, strings and intervals)."""
    keep = (int, float, str, bool, type(None))
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, keep) or (isinstance(v, dict) and all(isinstance(x, keep) for x in v.values()))
    }


def _lookup(dumped: dict[str, Any], path: str) -> Any:
    node: Any = dumped
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _barrier() -> None:
    # Only under several processes: this joins the process group (gloo on CPU), as the loop does.
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()
