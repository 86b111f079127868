"""Curriculum learning: easy examples first.

Difficulty is the token count (``length``) or the loss of the model before training (``loss``; with a
new classification head that loss mostly reflects the head's random start). Pacing:

- ``ordered``: every epoch runs from the easiest batch to the hardest.
- ``competence`` (Platanios et al. 2019): at training progress t (0..1) batches are drawn uniformly
  from the easiest ``c(t)`` share of the data, ``c(t) = min(1, sqrt(t (1 - c0²) / T + c0²))`` with
  ``c0 = initial_competence`` and ``T = full_at``.

Both orders are pure functions of (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from tunelab.batching import eval_batches
from tunelab.config.train import CurriculumSpec, TrainConfig
from tunelab.train.callbacks import BatchOrder, Plan
from tunelab.train.strategies.base import STRATEGIES, StrategySetup


def _by_length(setup: StrategySetup) -> list[float]:
    return [float(len(f["input_ids"])) for f in setup.features]


def _by_loss(setup: StrategySetup) -> list[float]:
    batches = eval_batches(setup.features, setup.task, setup.tokenizer, setup.cfg.eval_batch_size)
    return setup.task.example_losses(setup.model, batches)


DIFFICULTY: dict[str, Callable[[StrategySetup], list[float]]] = {"length": _by_length, "loss": _by_loss}


def competence(progress: float, initial: float, full_at: float) -> float:
    """Share of the data (easiest first) available at ``progress`` (0..1) of training."""
    return min(1.0, math.sqrt(progress * (1 - initial**2) / full_at + initial**2))


def _easy_first(difficulty: list[float], rng: random.Random) -> list[int]:
    """Indices from easiest to hardest; ties in random (seeded) order."""
    tiebreak = [rng.random() for _ in difficulty]
    return sorted(range(len(difficulty)), key=lambda i: (difficulty[i], tiebreak[i]))


def ordered(difficulty: list[float], spec: CurriculumSpec, setup: StrategySetup) -> BatchOrder:
    def order(lengths, batch_size, seed, epoch, group_by_length):
        idx = _easy_first(difficulty, random.Random(seed * 1_000_003 + epoch))
        return [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]

    return order


def total_batches(cfg: TrainConfig, per_epoch: int) -> int:
    """Global batches in the whole run (``fit`` orders batches at the global size, then shards them)."""
    if cfg.max_steps:
        return cfg.max_steps * cfg.grad_accum
    return max(1, math.ceil(cfg.epochs * per_epoch))


def paced(difficulty: list[float], spec: CurriculumSpec, setup: StrategySetup) -> BatchOrder:
    def order(lengths, batch_size, seed, epoch, group_by_length):
        rng = random.Random(seed * 1_000_003 + epoch)
        idx = _easy_first(difficulty, rng)
        per_epoch = math.ceil(len(idx) / batch_size)
        total = total_batches(setup.cfg, per_epoch)
        batches = []
        for j in range(per_epoch):
            progress = min(1.0, (epoch * per_epoch + j) / total)
            share = competence(progress, spec.initial_competence, spec.full_at)
            pool = max(batch_size, math.ceil(share * len(idx)))
            batches.append(rng.sample(idx[:pool], min(batch_size, pool)))
        return batches

    return order


PACING: dict[str, Callable[[list[float], CurriculumSpec, StrategySetup], BatchOrder]] = {
    "ordered": ordered,
    "competence": paced,
}


@STRATEGIES.register("curriculum")
def curriculum(spec: CurriculumSpec, setup: StrategySetup) -> Plan:
    difficulty = DIFFICULTY[spec.difficulty](setup)
    return Plan(batch_order=PACING[spec.pacing](difficulty, spec, setup))
