"""Every registered task fits the pipeline: a known data format and metrics the registry knows."""

from __future__ import annotations

import pytest

from tunelab.data.formats import FORMATS
from tunelab.metrics.registry import get_metric
from tunelab.registry import TASKS
from tunelab.tasks import get_task
from tunelab.tasks.losses import LOSSES


def test_the_built_in_tasks_are_registered():
    assert {"classification", "regression", "multilabel", "sft", "lm"} <= set(TASKS.names())


@pytest.mark.parametrize("name", TASKS.names())
def test_task_contract(name):
    task = get_task(name)
    assert task.name == name
    assert task.data_format in FORMATS.names(), task.data_format
    assert task.headline, "a task headlines at least one metric"
    for metric in (*task.headline, task.default_metric, *task.validation_metrics, task.rank_metric):
        get_metric(metric)  # raises for an unknown name
    # the best checkpoint is picked from the validation figures, so its metric must be among them
    assert task.default_metric in ("loss", *task.validation_metrics)
    assert LOSSES.get(task.default_loss).kind == task.loss_kind
    if task.has_labels:
        assert task.label_vocabulary([]) == []
