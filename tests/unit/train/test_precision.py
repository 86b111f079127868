"""``precision: auto`` never picks bf16 on a CPU without fast bf16 units."""

from __future__ import annotations

import torch

from tunelab.train import precision


def test_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert precision.choose_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert precision.choose_precision("auto", torch.device("cpu")) == "bf16"


def test_explicit_choice_wins():
    assert precision.choose_precision("bf16", torch.device("cpu")) == "bf16"
    assert precision.choose_precision("fp32", torch.device("cpu")) == "fp32"
