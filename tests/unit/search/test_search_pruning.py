"""The pruning callback: every validation is reported; a prune stops the loop through ``ctx.stop``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tunelab.search.pruning import PruningCallback


class FakeTrial:
    def __init__(self, prune_at: int | None) -> None:
        self.reports: list[tuple[float, int]] = []
        self.prune_at = prune_at

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.prune_at is not None and len(self.reports) >= self.prune_at


def ctx() -> SimpleNamespace:
    return SimpleNamespace(stop=False, stop_reason="", state=SimpleNamespace(global_step=0))


def test_each_validation_is_reported_by_its_count_not_its_step():
    trial, c = FakeTrial(prune_at=None), ctx()
    cb = PruningCallback(trial, "accuracy")
    for step, acc in ((12, 0.6), (24, 0.7)):
        c.state.global_step = step
        cb.on_evaluate(c, {"loss": 0.5, "accuracy": acc})
    assert trial.reports == [(0.6, 1), (0.7, 2)]
    assert not c.stop and cb.pruned_at is None


def test_a_prune_stops_training_and_says_why():
    trial, c = FakeTrial(prune_at=2), ctx()
    cb = PruningCallback(trial, "loss")
    cb.on_evaluate(c, {"loss": 0.9})
    assert not c.stop
    cb.on_evaluate(c, {"loss": 0.8})
    assert c.stop and cb.pruned_at == 2 and "pruned by the search" in c.stop_reason


def test_an_unknown_metric_names_the_key_and_the_choices():
    cb = PruningCallback(FakeTrial(None), "acc")
    with pytest.raises(ValueError, match=r"search.metric 'acc' .* pick one of \['accuracy', 'loss'\]"):
        cb.on_evaluate(ctx(), {"loss": 0.1, "accuracy": 0.9})
