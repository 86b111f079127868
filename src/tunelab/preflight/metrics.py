"""Metric checks: every metric a recipe names is one the task's validation (or evaluation) produces.

Validation reports ``loss``, the task's ``validation_metrics`` and any registered metric that can
score the task's kind of predictions (``Metric.kinds``); a figure the task reports itself at test
time (``rouge_l``) is not computed from validation predictions, so it cannot pick the best model.
"""

from __future__ import annotations

from tunelab.config.train import EarlyStoppingSpec
from tunelab.metrics.registry import METRICS, get_metric
from tunelab.preflight.context import Context, did_you_mean
from tunelab.registry import UnknownPluginError


def validation_metrics(task: object, kind: str | None) -> list[str]:
    """The figures ``task.validate`` can report: the loss, its own metrics, and what scores ``kind``."""
    names = ["loss", *getattr(task, "validation_metrics", ())]
    get_metric("loss")  # registers the built-ins
    for name in METRICS.names():
        m = get_metric(name)
        if m.fn is not None and (not m.kinds or (kind is not None and kind in m.kinds)):
            names.append(name)
    return list(dict.fromkeys(names))


def check(ctx: Context) -> None:
    if ctx.task is None:
        return
    if ctx.kind is None:
        ctx.findings.note(
            "task",
            f"task {ctx.task_name} declares no prediction_kind: metric names are checked by name only",
        )
    val = validation_metrics(ctx.task, ctx.kind)
    test = list(dict.fromkeys([*val, *ctx.task.headline]))
    r = ctx.recipe
    if r.train.metric_for_best is not None:
        _check(ctx, "train.metric_for_best", r.train.metric_for_best, val, "pick the best checkpoint")
    for i, spec in enumerate(r.train.strategies):
        if isinstance(spec, EarlyStoppingSpec) and spec.metric is not None:
            _check(ctx, f"train.strategies.{i}.metric", spec.metric, val, "drive early stopping")
    if r.search is not None and r.search.metric is not None:
        _check(ctx, "search.metric", r.search.metric, val, "be the search objective")
    for i, name in enumerate(r.evaluate.metrics):
        _check(ctx, f"evaluate.metrics.{i}", name, test, "headline the evaluation", at="evaluation")


def _check(ctx: Context, key: str, name: str, allowed: list[str], role: str, at: str = "validation") -> None:
    if "." in name or ":" in name:
        try:
            get_metric(name)  # a user's function: it must import and be callable
        except UnknownPluginError as exc:
            ctx.findings.problem(key, str(exc))
        except Exception as exc:  # the module imported but raised while running its top level
            ctx.findings.problem(key, f"importing metric {name!r} failed: {type(exc).__name__}: {exc}")
        return
    if name in allowed:
        return
    choose = f"choose one of {allowed}"
    if name not in METRICS:
        hint = did_you_mean(name, METRICS.names())
        ctx.findings.problem(
            key, f"unknown metric {name!r}{hint}; task {ctx.task_name} {at} reports: {allowed}"
        )
        return
    m = get_metric(name)
    if m.fn is None:
        ctx.findings.problem(
            key,
            f"{name!r} is not computed from {at} predictions (the task reports it itself, when it does), "
            f"so it cannot {role}; {choose}",
        )
    else:
        ctx.findings.problem(
            key,
            f"task {ctx.task_name}'s {at} does not produce {name!r}: it scores {'/'.join(m.kinds)} "
            f"predictions and the task makes {ctx.kind}; {choose}",
        )
