"""``train.compile``: compiled and eager logits agree, training steps use the compiled module, and what is
saved is the plain module's (no ``_orig_mod.`` prefix). Compiling takes 20-60 s on 2 CPU cores: slow."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from tests.unit.train.fit_helpers import sft_setup
from tests.unit.train.speed_helpers import assert_same_curve, losses, sft_fit

from tunelab.train.compile import batch_shapes, bucket, compile_for_training


def test_buckets_bound_the_padded_lengths():
    assert [bucket(n) for n in (32, 64, 128, 256, 512, 4096)] == [8, 8, 16, 32, 64, 64]
    for longest in range(1, 513):
        assert -(-longest // bucket(longest)) <= 8
    assert batch_shapes([[0, 1], [2, 3], [4]], [10, 20, 30, 31, 5], 16) == 2  # (2, 32) twice, (1, 16)


def test_compiling_is_lazy_raises_the_recompile_limit_and_keeps_the_plain_state_dict(tiny_llama, tmp_path):
    import torch._dynamo

    model = sft_setup(tiny_llama, tmp_path, n=2)[2]
    before = set(model.state_dict())
    compiled = compile_for_training(model, shapes=40)
    assert compiled._orig_mod is model
    assert torch._dynamo.config.recompile_limit >= 48
    assert set(model.state_dict()) == before and not any(k.startswith("_orig_mod") for k in before)
    assert next(iter(compiled.state_dict())).startswith("_orig_mod."), "why checkpoints read the plain module"


@pytest.mark.slow
def test_compiled_and_eager_logits_agree(tiny_llama, tmp_path):
    _, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=8)
    batch = task.collate(feats, tok)
    model.eval()
    compiled = compile_for_training(model, shapes=1)
    with torch.no_grad():
        eager = task.forward(model, batch).logits
        fast = task.forward(compiled, batch).logits
    torch.testing.assert_close(fast, eager, atol=1e-3, rtol=1e-3)


@pytest.mark.slow
def test_a_compiled_fit_keeps_the_loss_curve_and_saves_plain_names(
    tiny_llama, tmp_path, fresh_accelerator_state
):
    # one padded length (64 = model.max_length) and full batches: a single training graph to compile
    from torch._dynamo.utils import counters

    common = {"pad_to_multiple_of": 64, "batch_size": 8}
    graphs = counters["stats"]["unique_graphs"]
    compiled, _ = sft_fit(tiny_llama, tmp_path / "compiled", compile=True, **common)
    assert counters["stats"]["unique_graphs"] > graphs, "the training steps ran compiled graphs"
    graphs = counters["stats"]["unique_graphs"]
    eager, _ = sft_fit(tiny_llama, tmp_path / "eager", compile=False, **common)
    assert counters["stats"]["unique_graphs"] == graphs
    assert compiled.speed["compile"] and not eager.speed["compile"]
    assert not compiled.speed["fast_dropout"], "auto: inductor draws its own masks"
    assert compiled.speed["attention"] == "sdpa"
    assert_same_curve(losses(compiled), losses(eager))
    saved = load_file(str(tmp_path / "compiled" / "ckpt" / "best" / "trainable.safetensors"))
    assert saved and not any("_orig_mod" in k for k in saved)
    assert set(saved) == set(load_file(str(tmp_path / "eager" / "ckpt" / "best" / "trainable.safetensors")))
