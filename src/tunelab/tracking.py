"""Optional experiment tracking: MLflow and/or TensorBoard, fed from the training log.

The train stage opens a :class:`Tracker` with the resolved recipe (flattened to ``train.learning_rate``,
``model.name``, ...); every row the loop appends to ``metrics/train_log.jsonl`` is forwarded to
:meth:`Tracker.log_entry`; :meth:`Tracker.finish` logs the summary and ``metrics/train_summary.json``.
The evaluate stage adds its headline test metrics to the same MLflow run (:func:`log_evaluation`), whose
id is kept in ``metrics/tracking.json``.

Resume logs no step twice: MLflow reopens the saved run and skips, per metric, steps at or below the last
one in that metric's stored history; TensorBoard's writer purges events after the checkpoint's step.
Both packages are imported only when their backend is on.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from tunelab.config import Recipe
from tunelab.runs import RunDir, atomic_write_json

TRACKING_FILE = "tracking.json"  # under metrics/: the MLflow run id and where it is stored
RUN_NAME_TAG = "tunelab.run_name"
_HINT = "pip install 'tunelab[track]'"
_MAX_PARAM = 6000  # MLflow's limit on a parameter value's length


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys; lists and scalars as JSON text (``{"train": {"lr": 1}}`` ->
    ``{"train.lr": "1"}``)."""
    if isinstance(obj, dict) and obj:
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return {prefix: text[:_MAX_PARAM]}


def numeric(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The numeric figures of ``metrics`` under ``prefix/``; ``{"value": x, ...}`` counts as ``x``."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict) and "value" in v:
            v = v["value"]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}/{k}"] = float(v)
    return out


def entry_metrics(entry: dict[str, Any]) -> dict[str, float]:
    """A train-log row as metrics: ``train/loss``, ``train/lr``, ... or ``validation/<name>``."""
    if "validation" in entry:
        return numeric(entry["validation"], "validation")
    return numeric({k: v for k, v in entry.items() if k not in ("step", "stopped")}, "train")


def _quiet() -> None:
    for name in ("mlflow", "alembic", "tensorboard", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _MLflow:
    """One MLflow run per training run; reopened on resume."""

    def __init__(self, recipe: Recipe, run_dir: RunDir, resume: bool) -> None:
        _quiet()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a folder store otherwise
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise ImportError(f"train.tracking.backend mlflow needs MLflow: {_HINT}") from e
        cfg = recipe.train.tracking
        self.uri = tracking_uri(cfg.uri, run_dir)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.id_file = run_dir.metrics / TRACKING_FILE
        saved = _read_saved(self.id_file) if resume else {}
        self.last: dict[str, int] = {}
        if saved.get("mlflow_run_id") and saved.get("tracking_uri") == self.uri:
            self.run_id = saved["mlflow_run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            for key in self.client.get_run(self.run_id).data.metrics:
                steps = [m.step for m in self.client.get_metric_history(self.run_id, key)]
                self.last[key] = max(steps, default=-1)
            return
        name = cfg.experiment or recipe.run.name
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(name)
        run = self.client.create_run(exp_id, run_name=recipe.run.name, tags={RUN_NAME_TAG: recipe.run.name})
        self.run_id = run.info.run_id
        self._log_params(flatten(recipe.model_dump(mode="json")))
        atomic_write_json(
            self.id_file,
            {**saved, "mlflow_run_id": self.run_id, "tracking_uri": self.uri, "experiment": name},
        )

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters a batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        fresh = {k: v for k, v in metrics.items() if step > self.last.get(k, -1)}
        if fresh:
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in fresh.items()])
            self.last.update(dict.fromkeys(fresh, step))

    def finish(self, step: int, summary: dict[str, float], artifacts: list[Path]) -> None:
        self.log(step, summary)
        for path in artifacts:
            if path.exists():
                self.client.log_artifact(self.run_id, str(path), artifact_path="metrics")
        self.client.set_terminated(self.run_id, "FINISHED")

    def close(self, failed: bool) -> None:
        if failed:
            self.client.set_terminated(self.run_id, "FAILED")


class _TensorBoard:
    """An event folder; on resume the writer purges events logged after the checkpoint."""

    def __init__(self, recipe: Recipe, run_dir: RunDir, resume_step: int | None) -> None:
        log_dir = tensorboard_dir(recipe, run_dir)
        if resume_step is None:  # a fresh run: old event files would overlay this run's curves
            for old in log_dir.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = _summary_writer(log_dir, None if resume_step is None else resume_step + 1)
        params = flatten(recipe.model_dump(mode="json"))
        if resume_step is None:
            self.writer.add_text("params", "\n".join(f"    {k}: {v}" for k, v in params.items()), 0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def finish(self, step: int, summary: dict[str, float], artifacts: list[Path]) -> None:
        self.log(step, summary)
        self.writer.close()

    def close(self, failed: bool) -> None:
        self.writer.close()


class Tracker:
    """The enabled backends, fed by the train stage (on the main process only)."""

    def __init__(self, backends: list[Any]) -> None:
        self.backends = backends

    def log_entry(self, entry: dict[str, Any]) -> None:
        """Log one train-log row at its step."""
        metrics = entry_metrics(entry)
        if metrics:
            for b in self.backends:
                b.log(int(entry["step"]), metrics)

    def finish(self, summary: dict[str, Any], artifacts: list[Path]) -> None:
        """Log the final figures (``final/...``, ``best/...``) and the artifacts; end the run."""
        figures = numeric(summary.get("final_validation") or {}, "final")
        figures |= numeric({k: v for k, v in summary.items() if k != "final_validation"}, "summary")
        best = dict(summary.get("best_metric") or {})
        best.pop("step", None)
        figures |= numeric(best, "best")
        for b in self.backends:
            b.finish(int(summary.get("steps") or 0), figures, artifacts)
        self.backends = []

    def close(self) -> None:
        """End a run that did not :meth:`finish` (training raised)."""
        for b in self.backends:
            b.close(failed=True)
        self.backends = []


def open_tracker(recipe: Recipe, run_dir: RunDir, resume_step: int | None) -> Tracker | None:
    """The tracker for ``recipe.train.tracking``, or ``None`` when it is off (nothing is imported).

    ``resume_step``: the checkpoint step a resumed run starts from (None: a fresh run).
    """
    names = recipe.train.tracking.backends()
    if not names:
        return None
    run_dir.metrics.mkdir(parents=True, exist_ok=True)
    backends: list[Any] = []
    for name in names:
        if name == "mlflow":
            backends.append(_MLflow(recipe, run_dir, resume_step is not None))
        else:
            backends.append(_TensorBoard(recipe, run_dir, resume_step))
    return Tracker(backends)


def log_evaluation(recipe: Recipe, run_dir: RunDir, metrics: dict[str, Any]) -> None:
    """Add the evaluate stage's headline figures (``test/<name>``) to the training run's tracking."""
    names = recipe.train.tracking.backends()
    figures = numeric(metrics, "test")
    if not names or not figures:
        return
    saved = _read_saved(run_dir.metrics / TRACKING_FILE)
    step = int(_read_saved(run_dir.metrics / "train_summary.json").get("steps") or 0)
    if "mlflow" in names and saved.get("mlflow_run_id"):
        _quiet()
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise ImportError(f"train.tracking.backend mlflow needs MLflow: {_HINT}") from e
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        MlflowClient(tracking_uri=saved["tracking_uri"]).log_batch(
            saved["mlflow_run_id"], metrics=[Metric(k, v, now, step) for k, v in figures.items()]
        )
    if "tensorboard" in names:
        writer = _summary_writer(tensorboard_dir(recipe, run_dir), None)
        for k, v in figures.items():
            writer.add_scalar(k, v, step)
        writer.close()


def tensorboard_dir(recipe: Recipe, run_dir: RunDir) -> Path:
    """``train.tracking.log_dir``, default ``<run dir>/tensorboard``."""
    return Path(recipe.train.tracking.log_dir or run_dir.path("tensorboard"))


def _summary_writer(log_dir: Path, purge_step: int | None) -> Any:
    _quiet()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError(f"train.tracking.backend tensorboard needs TensorBoard: {_HINT}") from e
    return SummaryWriter(str(log_dir), purge_step=purge_step)


def tracking_uri(uri: str | None, run_dir: RunDir) -> str:
    """A URI with a scheme as given; a plain folder (default ``<run dir>/mlruns``) as an absolute file URI."""
    if uri and "://" in uri:
        return uri
    return Path(uri or run_dir.path("mlruns")).resolve().as_uri()


def _read_saved(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
