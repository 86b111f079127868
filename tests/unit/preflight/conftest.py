"""Preflight tests: recipes built in memory, checked offline, no training."""

from __future__ import annotations

import pytest

from tunelab.config import validate_recipe
from tunelab.preflight import check


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def preflight():
    """``preflight(raw_recipe_dict) -> (problems, notes)``."""

    def run(raw: dict) -> tuple[list[str], list[str]]:
        return check(validate_recipe(raw))

    return run


def keys(found: list[str]) -> list[str]:
    """The key path each finding starts with."""
    return [f.split(" ", 1)[0].rstrip(":") for f in found]
