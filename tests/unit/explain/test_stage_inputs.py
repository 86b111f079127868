"""The explain stage refuses a split it cannot read before it loads anything."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tunelab.explain.config import ExplainConfig
from tunelab.explain.stage import run


class _NoRun:
    def split_rows(self, split):  # the data stage's error: it would send the user to `tunelab data`
        raise AssertionError(f"read data/{split}.jsonl")


def test_an_unknown_split_names_the_valid_ones():
    recipe = SimpleNamespace(section=lambda name: ExplainConfig())
    with pytest.raises(ValueError) as err:
        run(recipe, _NoRun(), split="nope")
    assert "'nope'" in str(err.value) and "train, validation, test" in str(err.value)
    assert "tunelab data" not in str(err.value)
