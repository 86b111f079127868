"""README "The run directory" / "Stages": a stage whose inputs and recipe section are unchanged skips
itself, ``--force`` redoes it, and a change upstream redoes every later stage. README "Training":
the saved model is the best checkpoint on the validation metric, not the last step."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from tests.guarantees.runs_helpers import assert_tensors_equal
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.tasks.classification import ClassificationTask


def _recipe(tiny_bert: Path, tmp: Path, bootstrap_samples: int = 20, **train):
    data = tmp / "reviews.jsonl"
    if not data.exists():
        write_jsonl(data, sentiment_rows(120))
    opts = {"epochs": 1, "eval_every": 3, "num_threads": 1, **train}
    raw = classification_recipe(tiny_bert, data, tmp / "runs", **opts)
    raw["evaluate"].update(bootstrap_samples=bootstrap_samples, compare_base=False)
    return validate_recipe(raw)


def _run_id(run: Path, stage: str) -> str:
    return json.loads((run / "manifest.json").read_text())["stages"][stage]["run_id"]


def _model_mtime(run: Path) -> int:
    return (run / "model/model.safetensors").stat().st_mtime_ns


def test_current_stages_skip_force_redoes_and_a_changed_section_redoes_downstream(tiny_bert, tmp_path):
    recipe = _recipe(tiny_bert, tmp_path)
    run = recipe.run_dir_path()
    assert not run_stage("data", recipe).skipped
    assert not run_stage("train", recipe).skipped
    assert not run_stage("evaluate", recipe).skipped
    ids, mtime = {s: _run_id(run, s) for s in ("train", "evaluate")}, _model_mtime(run)

    # unchanged: both skip, nothing is rewritten
    assert run_stage("train", recipe).skipped and run_stage("evaluate", recipe).skipped
    assert _model_mtime(run) == mtime and {s: _run_id(run, s) for s in ids} == ids

    # --force redoes train; evaluate, downstream of a rerun train, is stale and reruns unforced
    assert not run_stage("train", recipe, force=True).skipped
    assert _run_id(run, "train") != ids["train"] and _model_mtime(run) != mtime
    assert not run_stage("evaluate", recipe).skipped
    assert run_stage("evaluate", recipe).skipped
    evaluated = _run_id(run, "evaluate")
    assert not run_stage("evaluate", recipe, force=True).skipped  # --force on a current stage
    assert _run_id(run, "evaluate") != evaluated

    # a changed train key redoes train and evaluate; a changed evaluate key redoes evaluate only
    changed = _recipe(tiny_bert, tmp_path, learning_rate=1e-3)
    trained = _run_id(run, "train")
    assert run_stage("data", changed).skipped
    assert not run_stage("train", changed).skipped and _run_id(run, "train") != trained
    assert not run_stage("evaluate", changed).skipped
    scored = _recipe(tiny_bert, tmp_path, bootstrap_samples=30, learning_rate=1e-3)
    assert run_stage("train", scored).skipped
    assert not run_stage("evaluate", scored).skipped


# validation accuracy at the evaluations (steps 3, 6, 9, 12): the best is the second, not the last
CURVE = [0.55, 0.9, 0.6, 0.7]


def test_the_saved_model_is_the_best_checkpoint_not_the_last_step(tiny_bert, tmp_path, monkeypatch):
    calls: list[int] = []

    def scripted(self, model, batches, extra=()):
        calls.append(1)
        value = CURVE[len(calls) - 1]
        return {"loss": 1.0 - value, **{name: value for name in ("accuracy", "macro_f1", *extra)}}

    monkeypatch.setattr(ClassificationTask, "validate", scripted)
    recipe = _recipe(tiny_bert, tmp_path, epochs=2, save_every=3, keep_checkpoints=10, learning_rate=1e-2)
    run = recipe.run_dir_path()
    run_stage("data", recipe)
    result = run_stage("train", recipe)
    assert len(calls) == len(CURVE) and result.metrics["steps"] == 12
    assert result.metrics["best_metric"] == {"accuracy": 0.9, "step": 6}

    ckpts = run / "checkpoints"
    model = load_file(str(run / "model/model.safetensors"))
    best = load_file(str(ckpts / "best/trainable.safetensors"))
    at_best = load_file(str(ckpts / "step-00000006/trainable.safetensors"))
    last = load_file(str(ckpts / "step-00000012/trainable.safetensors"))
    assert_tensors_equal(best, at_best, "best/ vs step 6")
    assert set(best) <= set(model)
    assert_tensors_equal({k: model[k] for k in best}, best, "model/ vs best/")
    moved = [k for k in best if not bool((last[k] == best[k]).all())]
    assert moved, "the scenario: training moved on after step 6"
