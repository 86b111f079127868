"""Experiment tracking: MLflow and TensorBoard fed from the training log, exact across a resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl
from tests.unit.train.fit_helpers import Crash

from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir

mlflow = pytest.importorskip("mlflow")


def _recipe(tiny_bert: Path, tmp_path: Path, tracking: dict, **train):
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(48))
    train = {"max_steps": 12, "eval_every": 4, "save_every": 4, "log_every": 1, **train}
    raw = classification_recipe(tiny_bert, data, tmp_path / "runs", tracking=tracking, **train)
    raw["evaluate"]["compare_base"] = False
    return validate_recipe(raw)


def _client(uri: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri.resolve().as_uri())


def _only_run(client):
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1
    return runs[0]


def test_mlflow_logs_params_steps_summary_and_test_metrics(tiny_bert, tmp_path):
    store = tmp_path / "store"
    recipe = _recipe(tiny_bert, tmp_path, {"backend": "mlflow", "uri": str(store), "experiment": "exp"})
    for stage in ("data", "train", "evaluate"):
        run_stage(stage, recipe)
    client = _client(store)
    run = _only_run(client)
    assert run.data.tags["tunelab.run_name"] == "cls" and run.info.status == "FINISHED"
    assert run.data.params["train.learning_rate"] == "0.003"
    assert run.data.params["model.name"] == str(tiny_bert)
    assert run.data.params["train.tracking.backend"] == "mlflow"
    loss = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in loss] == list(range(1, 13))
    assert {"train/lr", "final/accuracy", "summary/steps"} <= set(run.data.metrics)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "validation/accuracy")] == [4, 8, 12]
    assert any(k.startswith("test/") for k in run.data.metrics), run.data.metrics
    assert [a.path for a in client.list_artifacts(run.info.run_id, "metrics")] == [
        "metrics/train_summary.json"
    ]
    saved = json.loads((tmp_path / "runs/cls/metrics/tracking.json").read_text())
    assert saved["mlflow_run_id"] == run.info.run_id


def test_resume_reopens_the_run_and_logs_no_step_twice(tiny_bert, tmp_path):
    from tunelab.train import stage as train_stage

    recipe = _recipe(tiny_bert, tmp_path, {"backend": ["mlflow", "tensorboard"]})
    run_stage("data", recipe)
    run_dir = RunDir(recipe.run_dir_path())
    with pytest.raises(KeyboardInterrupt):  # checkpoint at step 4; steps 5 and 6 logged, then "killed"
        train_stage.run(recipe, run_dir, callbacks=[Crash(6)])
    client = _client(run_dir.path("mlruns"))
    first = _only_run(client)
    assert [m.step for m in client.get_metric_history(first.info.run_id, "train/loss")] == list(range(1, 7))

    train_stage.run(recipe, run_dir, resume=True)
    run = _only_run(client)
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    loss = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in loss] == list(range(1, 13))  # each step exactly once, the whole run
    for key in run.data.metrics:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == len(set(steps)), key
    logged = [
        json.loads(line) for line in run_dir.metrics.joinpath("train_log.jsonl").read_text().splitlines()
    ]
    by_step = {e["step"]: e["loss"] for e in logged if "loss" in e}
    assert {m.step: m.value for m in loss} == pytest.approx(by_step)
    assert list(run_dir.path("tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_writes_event_files(tiny_bert, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = _recipe(
        tiny_bert, tmp_path, {"backend": "tensorboard", "log_dir": str(tmp_path / "tb")}, max_steps=4
    )
    for stage in ("data", "train"):
        run_stage(stage, recipe)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert not (tmp_path / "runs/cls/mlruns").exists()


def test_backend_none_imports_neither_package(tiny_bert, tmp_path):
    recipe = _recipe(tiny_bert, tmp_path, {}, max_steps=2)
    assert recipe.train.tracking.backends() == []
    from tunelab.config.recipe import Recipe

    # the core sections only: a plug-in stage another test registered is unknown to the subprocess
    core = {k: v for k, v in recipe.model_dump(mode="json").items() if k in Recipe.model_fields}
    script = (
        "import sys\n"
        "from tunelab.config import validate_recipe\n"
        "from tunelab.tracking import open_tracker, log_evaluation\n"
        "from tunelab.runs import RunDir\n"
        f"r = validate_recipe({core!r})\n"
        "d = RunDir(r.run_dir_path())\n"
        "assert open_tracker(r, d, None) is None\n"
        "log_evaluation(r, d, {'accuracy': 1.0})\n"
        "bad = [m for m in sys.modules if 'mlflow' in m or 'tensorboard' in m]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "runs/cls").exists()


def test_tracking_section_is_strict(tiny_bert, tmp_path):
    from tunelab.config.train import TrackingConfig

    with pytest.raises(ValueError, match="uir"):
        TrackingConfig.model_validate({"backend": "mlflow", "uir": "x"})
    with pytest.raises(ValueError):
        TrackingConfig.model_validate({"backend": "wandb"})
    assert TrackingConfig.model_validate({"backend": ["tensorboard", "mlflow"]}).backends() == [
        "tensorboard",
        "mlflow",
    ]
