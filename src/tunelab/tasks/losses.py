"""Training losses, computed by the task from the model's logits; chosen by name in ``train.loss``.

Each loss declares the ``kind`` of output it scores, so a recipe that pairs a task with a loss it
cannot use fails before training with the names that would fit:

- ``classification``: logits ``(batch, classes)``, integer labels ``(batch,)``
- ``token``: causal-LM logits ``(batch, time, vocab)``, labels ``(batch, time)`` with -100 on ignored tokens
- ``regression``: predictions ``(batch, 1)``, float targets ``(batch,)``
- ``multilabel``: logits ``(batch, labels)``, 0/1 float targets ``(batch, labels)``

A dotted path (``mypkg.losses:MyLoss``) names a class with the same ``build`` / ``__call__`` shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from tunelab.batching import IGNORE
from tunelab.registry import Registry


@dataclass
class LossData:
    """What a loss may learn from the train split before training starts."""

    label_counts: Sequence[int] | None = None  # classification: train examples per label id


class Loss:
    """A training loss: ``loss(logits, labels) -> scalar``."""

    kind: ClassVar[str] = "classification"

    @classmethod
    def build(cls, params: dict[str, Any], data: LossData) -> Loss:
        return cls(**params)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


LOSSES: Registry[type[Loss]] = Registry("loss")


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    def __call__(self, logits, labels):
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)


@LOSSES.register("class_weighted")
class ClassWeighted(Loss):
    """Cross-entropy with class weights ``n / (k * count[c])`` (rare classes count more).

    The weighted mean divides by the summed weights of the batch, as ``torch`` does.
    """

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = torch.tensor(list(weights), dtype=torch.float32)

    @classmethod
    def build(cls, params, data):
        if not data.label_counts:
            raise ValueError("class_weighted needs the train label counts (a classification task)")
        return cls(weights=balanced_weights(data.label_counts), **params)

    def __call__(self, logits, labels):
        w = self.weights.to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=w, ignore_index=IGNORE)


def balanced_weights(counts: Sequence[int]) -> list[float]:
    """``n / (k * count)`` per class; a class absent from train gets weight 0 (it never occurs)."""
    n, k = sum(counts), len(counts)
    return [n / (k * c) if c else 0.0 for c in counts]


@LOSSES.register("label_smoothing")
class LabelSmoothing(Loss):
    def __init__(self, smoothing: float = 0.1) -> None:
        self.smoothing = smoothing

    def __call__(self, logits, labels):
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, label_smoothing=self.smoothing)


@LOSSES.register("focal")
class Focal(Loss):
    """``mean(-(1 - p_t)^gamma * log p_t)``: confident, correct examples count less (Lin et al. 2017)."""

    def __init__(self, gamma: float = 2.0) -> None:
        self.gamma = gamma

    def __call__(self, logits, labels):
        keep = labels != IGNORE
        logp = F.log_softmax(logits.float()[keep], dim=-1)
        logp_t = logp.gather(-1, labels[keep].unsqueeze(-1)).squeeze(-1)
        return (-((1 - logp_t.exp()) ** self.gamma) * logp_t).mean()


@LOSSES.register("answer_only")
class AnswerOnly(Loss):
    """Next-token cross-entropy averaged over the tokens whose label is not -100 (the answer)."""

    kind = "token"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def __call__(self, logits, labels):
        # position t predicts token t + 1
        pred, target = logits[:, :-1].float(), labels[:, 1:]
        return F.cross_entropy(
            pred.reshape(-1, pred.shape[-1]), target.reshape(-1), ignore_index=IGNORE,
            label_smoothing=self.label_smoothing,
        )


@LOSSES.register("mse")
class MSE(Loss):
    kind = "regression"

    def __call__(self, logits, labels):
        return F.mse_loss(logits.float().reshape(-1), labels.float().reshape(-1))


@LOSSES.register("bce")
class BCE(Loss):
    """A sigmoid per label and binary cross-entropy (``binary_cross_entropy_with_logits``, stable)."""

    kind = "multilabel"

    def __call__(self, logits, labels):
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def build_loss(name: str, params: dict[str, Any], kind: str, data: LossData) -> Loss:
    """The loss called ``name`` with ``params``, checked to score ``kind`` outputs."""
    cls = LOSSES.get(name)
    got = getattr(cls, "kind", kind)
    if got != kind:
        fits = [n for n in LOSSES.names() if LOSSES.get(n).kind == kind]
        raise ValueError(f"train.loss: {name!r} scores {got} outputs; this task needs one of {fits}")
    try:
        return cls.build(params, data) if hasattr(cls, "build") else cls(**params)
    except TypeError as exc:  # a dotted-path loss given parameters it does not take
        raise ValueError(f"train.loss: cannot build {name!r} with {params}: {exc}") from exc
