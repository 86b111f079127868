"""Each training-speed switch leaves the loss curve the same (fp32, 20 steps, within CURVE_RTOL per step).

What is comparable: the runs on both sides draw the same random numbers (no dropout; the same seed),
so any difference is arithmetic (a different summation order, wider padded matmuls). Token budgets
change which examples share a step, so their curve is compared where the budget builds the very
batches of the fixed-size run (every length equal, budget = rows x length); with ragged lengths
only the batching properties are checked (tests/unit/test_batching.py, test_token_budget.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from tests.unit.train.fit_helpers import run_fit
from tests.unit.train.speed_helpers import (
    FP32,
    STEPS,
    Widths,
    assert_same_curve,
    cls_fit,
    lm_setup,
    losses,
    sft_fit,
)
from transformers import set_seed

from tunelab.batching import epoch_batches, token_batches
from tunelab.tasks.chunked_loss import transformers_model
from tunelab.train.callbacks import Callback, Plan


def test_chunked_loss_keeps_the_sft_loss_curve(tiny_llama, tmp_path, fresh_accelerator_state):
    on, _ = sft_fit(tiny_llama, tmp_path / "on", chunked_loss=True, loss_chunk_tokens=16)
    off, _ = sft_fit(tiny_llama, tmp_path / "off", chunked_loss=False)
    assert on.speed["chunked_loss"] and on.speed["loss_chunk_tokens"] == 16
    assert not off.speed["chunked_loss"]
    assert_same_curve(losses(on), losses(off))


def test_chunked_loss_auto_is_on_for_sft_with_packing(tiny_llama, tmp_path, fresh_accelerator_state):
    on, _ = sft_fit(tiny_llama, tmp_path / "on", packing=True)
    assert on.speed["chunked_loss"], "auto: on for sft"
    off, _ = sft_fit(tiny_llama, tmp_path / "off", packing=True, chunked_loss=False)
    assert_same_curve(losses(on), losses(off))


class _Checkpointing(Callback):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_step_end(self, ctx, loss: float) -> None:
        self.seen.append(transformers_model(ctx.model).is_activation_checkpointing)


def test_gradient_checkpointing_keeps_the_loss_curve(tiny_llama, tmp_path, fresh_accelerator_state):
    watch = _Checkpointing()
    on, model = sft_fit(
        tiny_llama, tmp_path / "on", plan=Plan(callbacks=[watch]), gradient_checkpointing=True
    )
    off, _ = sft_fit(tiny_llama, tmp_path / "off")
    assert watch.seen and all(watch.seen), "checkpointing was on during training"
    assert not transformers_model(model).is_activation_checkpointing, "and is off again after fit"
    assert on.speed["gradient_checkpointing"] and not off.speed["gradient_checkpointing"]
    assert_same_curve(losses(on), losses(off))


@pytest.mark.parametrize("multiple", [16, 64])
def test_padding_to_a_multiple_keeps_the_loss_curve(tiny_bert, tmp_path, fresh_accelerator_state, multiple):
    wide, narrow = Widths(), Widths()
    padded, _ = cls_fit(tiny_bert, tmp_path / "padded", Plan(callbacks=[wide]), pad_to_multiple_of=multiple)
    plain, _ = cls_fit(tiny_bert, tmp_path / "plain", Plan(callbacks=[narrow]), pad_to_multiple_of=1)
    assert padded.speed["pad_to_multiple_of"] == multiple
    assert len(wide.seen) == STEPS and all(w % multiple == 0 for w in wide.seen)
    assert any(w % multiple for w in narrow.seen), "without it, widths are the longest rows'"
    assert_same_curve(losses(padded), losses(plain), trains=False)


def test_padding_keeps_the_sft_loss_curve(tiny_llama, tmp_path, fresh_accelerator_state):
    wide = Widths()
    padded, _ = sft_fit(tiny_llama, tmp_path / "padded", plan=Plan(callbacks=[wide]), pad_to_multiple_of=32,
                        packing=True)
    plain, _ = sft_fit(tiny_llama, tmp_path / "plain", pad_to_multiple_of=1, packing=True)
    assert wide.seen and all(w % 32 == 0 for w in wide.seen)
    assert_same_curve(losses(padded), losses(plain))


def test_token_budget_of_equal_lengths_trains_exactly_like_fixed_batches(
    tiny_llama, tmp_path, fresh_accelerator_state
):
    curves, batch = {}, 8
    for name, extra in {"fixed": {}, "budget": {"batch_tokens": 32 * batch}}.items():
        set_seed(7)
        train = {**FP32, "batch_size": batch, "pad_to_multiple_of": 1, **extra}
        recipe, task, model, tok, blocks = lm_setup(tiny_llama, tmp_path / name, **train)
        task.use_loss(None, blocks)
        lengths = [len(b["input_ids"]) for b in blocks]
        assert set(lengths) == {32} and len(blocks) > 3 * batch
        result = run_fit(recipe, task, model, tok, blocks[: 3 * batch], blocks[3 * batch :], tmp_path / name)
        assert result.speed["batch_tokens"] == extra.get("batch_tokens")
        curves[name] = losses(result)
    used = lengths[: 3 * batch]
    same = token_batches(used, 32 * batch, 7, 0) == epoch_batches(used, batch, 7, 0)
    assert same, "the budget builds the fixed-size batches"
    assert_same_curve(curves["budget"], curves["fixed"])


def test_auto_settings_on_cpu_and_what_the_summary_records(tiny_llama, tmp_path, fresh_accelerator_state):
    result, _ = sft_fit(tiny_llama, tmp_path, num_threads=1)
    speed = result.speed
    assert speed["compile"] is False, "auto: no torch.compile on CPU"
    assert speed["pad_to_multiple_of"] == 4, "auto: 4 on CPU without compile"
    assert speed["precision"] == "fp32" and speed["intra_op_threads"] == 1 == torch.get_num_threads()
    assert speed["inter_op_threads"] == torch.get_num_interop_threads()
    assert speed["fast_dropout"] is True and speed["attention"] == "math<=128", "auto on CPU"
    json.dumps(speed)  # plain JSON for train_summary.json


def test_chunked_loss_true_is_refused_for_classification(tiny_bert, tmp_path, fresh_accelerator_state):
    with pytest.raises(ValueError, match=r"train.chunked_loss: true, but task 'classification'"):
        cls_fit(tiny_bert, tmp_path, chunked_loss=True)
    auto, _ = cls_fit(tiny_bert, tmp_path / "auto", max_steps=2)
    assert auto.speed["chunked_loss"] is False


def test_gradient_checkpointing_needs_a_model_that_supports_it(tiny_llama, tmp_path):
    from tunelab.train.speed import enable_gradient_checkpointing

    with pytest.raises(ValueError, match=r"train\.gradient_checkpointing: Linear does not support"):
        enable_gradient_checkpointing(torch.nn.Linear(2, 2))
