"""``train.precision: bf16`` through ``fit`` on a tiny model: the autocast path runs on any machine
(on a CPU without bf16 units PyTorch emulates it: slow at scale, instant here)."""

from __future__ import annotations

import math

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file
from tests.unit.train.fit_helpers import cls_setup, run_fit


@pytest.fixture
def fresh_accelerator_state():
    # accelerate keeps one process-wide state and refuses another mixed_precision once it is set,
    # so this test starts from (and leaves) a clean one for the fp32 tests around it
    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


def test_bf16_autocast_trains_and_keeps_fp32_weights(tiny_bert, tmp_path, fresh_accelerator_state):
    steps = 6
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=32, batch_size=8, max_steps=steps, eval_every=3, log_every=1,
        learning_rate=1e-3, precision="bf16",
    )
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    dtypes: list[tuple[bool, torch.dtype]] = []
    hook = linear.register_forward_hook(lambda m, args, out: dtypes.append((m.training, out.dtype)))
    try:
        result = run_fit(recipe, task, model, tok, train, val, tmp_path)
    finally:
        hook.remove()

    assert result.precision == "bf16"
    # matmuls ran in bf16, in training and in validation
    assert {(True, torch.bfloat16), (False, torch.bfloat16)} <= set(dtypes)
    losses = [h["loss"] for h in result.state.history if "loss" in h]
    assert len(losses) == steps and all(math.isfinite(x) for x in losses)
    assert result.final_validation and all(math.isfinite(v) for v in result.final_validation.values())
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, start[n])]
    assert len(changed) >= 0.9 * len(start)  # it trained (the model now holds the best step's weights)
    # autocast computes in bf16; the weights, the optimiser's master copy, stay fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ckpt = tmp_path / "ckpt"
    for folder in (ckpt / "best", ckpt / f"step-{steps:08d}"):
        saved = load_file(str(folder / "trainable.safetensors"))
        assert set(saved) == set(start)
        assert all(t.dtype == torch.float32 for t in saved.values()), folder.name
