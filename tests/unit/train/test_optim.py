"""Weight decay spares biases and norms; warm-up + linear/cosine LR curves; layer-wise learning rates."""

from __future__ import annotations

import math

import pytest
import torch
from tests.unit.train.fit_helpers import Record, cls_setup, run_fit

from tunelab.config.train import TrainConfig
from tunelab.train.callbacks import Plan
from tunelab.train.optim import build_optimizer, build_scheduler
from tunelab.train.strategies.layerwise_lr import layerwise_param_groups


def test_no_decay_on_biases_and_norms(tiny_bert, tmp_path):
    _, _, model, *_ = cls_setup(tiny_bert, tmp_path, n=8)
    opt = build_optimizer(model, TrainConfig(weight_decay=0.1))
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        plain = name.endswith(".bias") or "LayerNorm" in name
        assert decay_of[id(p)] == (0.0 if plain else 0.1), name


def _curve(scheduler: str, total: int = 100, warmup: float = 0.1) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    cfg = TrainConfig(learning_rate=1.0, warmup_ratio=warmup, scheduler=scheduler)
    opt = torch.optim.AdamW([p], lr=cfg.learning_rate)
    sched = build_scheduler(opt, cfg, total)
    lrs = []
    for _ in range(total):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("scheduler", ["linear", "cosine", "constant"])
def test_warmup_then_the_named_decay(scheduler):
    lrs = _curve(scheduler)
    for step in range(10):  # linear warm-up over the first 10% of steps
        assert lrs[step] == pytest.approx(step / 10)
    after = {
        "linear": lambda s: (100 - s) / 90,
        "cosine": lambda s: 0.5 * (1 + math.cos(math.pi * (s - 10) / 90)),
        "constant": lambda s: 1.0,
    }[scheduler]
    for step in range(10, 100):
        assert lrs[step] == pytest.approx(after(step), abs=1e-9), step


def test_layerwise_lr_gives_each_depth_its_rate(tiny_bert, tmp_path):
    _, _, model, *_ = cls_setup(tiny_bert, tmp_path, n=8)
    cfg = TrainConfig(learning_rate=1e-3, weight_decay=0.1, warmup_ratio=0.0, scheduler="linear")
    opt = build_optimizer(model, cfg, layerwise_param_groups(0.5))
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    expected_depth = {"classifier": 0, "bert.pooler": 0, "bert.encoder.layer.1.": 1,
                      "bert.encoder.layer.0.": 2, "bert.embeddings": 3}
    for name, p in model.named_parameters():
        depth = next(d for prefix, d in expected_depth.items() if name.startswith(prefix))
        lr, wd = lr_of[id(p)]
        assert lr == pytest.approx(1e-3 * 0.5**depth), name
        assert wd == (0.0 if name.endswith(".bias") or "LayerNorm" in name else 0.1), name
    # the schedule scales every group alike, so the ratios hold
    sched = build_scheduler(opt, cfg, total_steps=10)
    for _ in range(3):
        opt.step()
        sched.step()
    rates = {g["name"]: g["lr"] for g in opt.param_groups}
    assert rates["layer.0"] / rates["head"] == pytest.approx(0.25)
    assert rates["embeddings"] / rates["layer.1"] == pytest.approx(0.25)


def test_layerwise_lr_in_fit(tiny_bert, tmp_path):
    from tunelab.train.strategies import StrategySetup, build_plan

    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=32, max_steps=3, warmup_ratio=0.0, scheduler="constant", eval_every=100,
        strategies=[{"name": "layerwise_lr", "decay": 0.8}],
    )
    plan = build_plan(recipe.train.strategies, StrategySetup(model, task, tok, train, recipe.train, 7))
    seen = Record(lambda ctx: {g["name"]: g["lr"] for g in ctx.optimizer.param_groups})
    run_fit(recipe, task, model, tok, train, val, tmp_path,
            Plan(callbacks=[seen], param_groups=plan.param_groups))
    lr = recipe.train.learning_rate
    assert seen.seen[-1]["head"] == pytest.approx(lr)
    assert seen.seen[-1]["layer.1"] == pytest.approx(lr * 0.8)
    assert seen.seen[-1]["embeddings.no_decay"] == pytest.approx(lr * 0.8**3)
