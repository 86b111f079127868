"""The training-speed keys of ``train:``: strict, described, and refused when they contradict each other."""

from __future__ import annotations

import pytest

from tunelab.config import RecipeError, validate_recipe
from tunelab.config.train import TrainConfig

BASE = {"data": {"sources": [{"bundled": "rotten_tomatoes"}]}}
SPEED_KEYS = ("chunked_loss", "loss_chunk_tokens", "batch_tokens", "pad_to_multiple_of", "compile",
              "gradient_checkpointing", "num_interop_threads", "fast_dropout", "attention")


def _problems(train: dict, model: dict | None = None) -> list[str]:
    with pytest.raises(RecipeError) as info:
        validate_recipe({**BASE, "train": train, "model": model or {}})
    return info.value.problems


def test_defaults_are_auto_or_off_and_every_key_is_described():
    cfg = TrainConfig()
    assert (cfg.chunked_loss, cfg.compile, cfg.pad_to_multiple_of) == ("auto", "auto", "auto")
    assert (cfg.fast_dropout, cfg.attention) == ("auto", "auto")
    assert cfg.batch_tokens is None and cfg.gradient_checkpointing is False
    for key in SPEED_KEYS:
        assert TrainConfig.model_fields[key].description, key


def test_values_parse_from_yaml_overrides():
    r = validate_recipe({**BASE, "train": {"chunked_loss": True, "compile": False, "pad_to_multiple_of": 16,
                                           "batch_tokens": 4096, "num_interop_threads": 1}})
    t = r.train
    assert (t.chunked_loss, t.compile, t.pad_to_multiple_of, t.batch_tokens) == (True, False, 16, 4096)


def test_each_bad_value_is_reported_with_its_key():
    problems = _problems({"pad_to_multiple_of": 12, "compile": "sometimes", "batch_tokens": 0,
                          "loss_chunk_tokens": 1, "chunked_losss": True, "fast_dropout": "maybe",
                          "attention": "flash"})
    for key in ("train.pad_to_multiple_of", "train.compile", "train.batch_tokens", "train.loss_chunk_tokens",
                "train.chunked_losss", "train.fast_dropout", "train.attention"):
        assert any(p.startswith(key) for p in problems), (key, problems)


def test_a_budget_below_one_full_row_is_refused():
    problems = _problems({"batch_tokens": 100}, {"max_length": 128})
    assert any("train.batch_tokens: 100 is below model.max_length 128" in p for p in problems), problems
    validate_recipe({**BASE, "train": {"batch_tokens": 128}, "model": {"max_length": 128}})


def test_contradicting_speed_settings_name_the_key():
    problems = _problems({"batch_tokens": 4096, "strategies": [{"name": "curriculum"}]})
    assert any("train.batch_tokens: token budgets build their own batch order" in p for p in problems)
    problems = _problems({"batch_tokens": 32, "pad_to_multiple_of": 64}, {"max_length": 16})
    assert any("train.batch_tokens: 32 is below train.pad_to_multiple_of 64" in p for p in problems)
    problems = _problems({"chunked_loss": True, "loss": "focal"})
    assert any("train.chunked_loss: true computes the answer_only loss" in p for p in problems)
    # auto leaves a non-LM loss alone, and label smoothing of the answer_only loss is kept
    validate_recipe({**BASE, "train": {"loss": "focal"}})
    smoothed = {"name": "answer_only", "label_smoothing": 0.1}
    validate_recipe({**BASE, "task": "sft", "train": {"chunked_loss": True, "loss": smoothed}})
