"""Curriculum: batches come easy-to-hard (ordered) or from a sqrt-growing pool of easy examples."""

from __future__ import annotations

import math
import random

import pytest
import torch
from tests.unit.train.fit_helpers import cls_setup, run_fit

from tunelab.config.train import CurriculumSpec, TrainConfig
from tunelab.train.strategies import StrategySetup, build_plan
from tunelab.train.strategies.curriculum import competence, ordered, paced


def _setup(cfg: TrainConfig, n: int) -> StrategySetup:
    return StrategySetup(model=None, task=None, tokenizer=None, features=[], cfg=cfg, seed=0)


def test_ordered_runs_easy_to_hard_every_epoch():
    difficulty = [random.Random(i).randint(1, 50) for i in range(100)]
    order = ordered(difficulty, CurriculumSpec(pacing="ordered"), _setup(TrainConfig(), 100))
    for epoch in (0, 1):
        batches = order([], 8, 3, epoch, True)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(100))
        assert [difficulty[i] for i in flat] == sorted(difficulty)
    assert order([], 8, 3, 0, True) == order([], 8, 3, 0, True)


def test_competence_formula():
    assert competence(0.0, 0.01, 0.5) == pytest.approx(0.01)
    assert competence(0.25, 0.01, 0.5) == pytest.approx(math.sqrt(0.25 * (1 - 1e-4) / 0.5 + 1e-4))
    assert competence(0.5, 0.01, 0.5) == 1.0 and competence(0.9, 0.01, 0.5) == 1.0


def test_competence_pacing_draws_from_the_easy_pool():
    n, bs = 400, 10
    difficulty = [float(random.Random(i).random()) for i in range(n)]
    rank = {i: r for r, i in enumerate(sorted(range(n), key=difficulty.__getitem__))}
    cfg = TrainConfig(epochs=2, batch_size=bs)
    spec = CurriculumSpec(pacing="competence", initial_competence=0.1, full_at=0.5)
    order = paced(difficulty, spec, _setup(cfg, n))
    total = 2 * n // bs
    for epoch in (0, 1):
        batches = order([], bs, 5, epoch, True)
        assert len(batches) == n // bs and all(len(b) == bs for b in batches)
        for j, b in enumerate(batches):
            pool = math.ceil(competence((epoch * len(batches) + j) / total, 0.1, 0.5) * n)
            assert max(rank[i] for i in b) < max(pool, bs), (epoch, j)
    first = order([], bs, 5, 0, True)
    assert max(rank[i] for i in first[0]) < 40  # c(0) = 0.1 of 400
    assert max(rank[i] for i in order([], bs, 5, 1, True)[-1]) >= 300  # full competence reaches the hard end
    assert first == order([], bs, 5, 0, True), "a pure function of (seed, epoch)"


class _Recording:
    """A task that records the token counts of every training batch (``loss`` runs only in training)."""

    def __init__(self, task) -> None:
        self.task, self.batches = task, []

    def __getattr__(self, name):
        return getattr(self.task, name)

    def loss(self, model, batch):
        self.batches.append(batch["attention_mask"].sum(1).tolist())
        return self.task.loss(model, batch)


def test_fit_feeds_the_ordered_curriculum(tiny_bert, tmp_path):
    recipe, task, model, tok, train, val = cls_setup(
        tiny_bert, tmp_path, n=48, batch_size=8, epochs=1, eval_every=100, eval_batch_size=16,
        strategies=[{"name": "curriculum", "difficulty": "length", "pacing": "ordered"}],
    )
    plan = build_plan(recipe.train.strategies, StrategySetup(model, task, tok, train, recipe.train, 7))
    rec = _Recording(task)
    run_fit(recipe, rec, model, tok, train, val, tmp_path, plan)
    seen = [n for b in rec.batches for n in b]
    assert len(rec.batches) == 6 and seen == sorted(len(f["input_ids"]) for f in train)


def test_loss_difficulty_is_the_models_per_example_loss(tiny_bert, tmp_path):
    recipe, task, model, tok, train, _ = cls_setup(tiny_bert, tmp_path, n=12, eval_batch_size=5)
    from tunelab.train.strategies.curriculum import DIFFICULTY

    got = DIFFICULTY["loss"](StrategySetup(model, task, tok, train, recipe.train, 7))
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        want = [ce(model(**task.collate([f], tok)).logits, torch.tensor([f["labels"]])).item() for f in train]
    assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
