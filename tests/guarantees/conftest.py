"""Fixtures of the guarantee tests: one uninterrupted training run that killed runs are compared with."""

from __future__ import annotations

import pytest
from tests.guarantees.runs_helpers import prepared_run

from tunelab.pipeline import run_stage


@pytest.fixture(scope="session")
def straight_run(tiny_bert, tmp_path_factory):
    """(run folder, schedule) of the resume recipe trained without interruption."""
    recipe, run, sched = prepared_run(tiny_bert, tmp_path_factory.mktemp("straight"))
    result = run_stage("train", recipe)
    assert result.metrics["steps"] == sched["total"] and result.metrics["resumed_from_step"] is None
    return run, sched
