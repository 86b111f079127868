"""Gradient clipping on CPU: torch's arithmetic, without the multiply by 1 when the norm is within bounds."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from tunelab.train.steps import clip_gradients


def _model_with_grads(scale: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    for p in model.parameters():
        p.grad = torch.randn(p.shape) * scale
    return model


@pytest.mark.parametrize("scale", [0.01, 10.0], ids=["within max_norm", "above max_norm"])
def test_clip_equals_torch_and_skips_the_multiply_by_one(scale, fresh_accelerator_state):
    ours, theirs = _model_with_grads(scale), _model_with_grads(scale)
    versions = [p.grad._version for p in ours.parameters()]
    total = clip_gradients(Accelerator(cpu=True), ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
    assert torch.equal(total, expected)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    touched = [p.grad._version != v for p, v in zip(ours.parameters(), versions, strict=True)]
    assert touched == [scale > 1.0] * len(touched), "gradients are written only when they are clipped"
