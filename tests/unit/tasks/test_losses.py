"""Each loss matches its formula on hand-made tensors; class weights come from the train counts."""

from __future__ import annotations

import math

import pytest
import torch

from tunelab.config.train import LOSS_SPECS, ClassWeightedSpec
from tunelab.registry import UnknownPluginError
from tunelab.tasks import get_task
from tunelab.tasks.losses import LOSSES, LossData, balanced_weights, build_loss

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0], [1.0, -1.0, 0.0]])
LABELS = torch.tensor([0, 2, 2, 1])


def _logp() -> list[list[float]]:
    """Log-softmax by hand."""
    out = []
    for row in LOGITS.tolist():
        z = math.log(sum(math.exp(v) for v in row))
        out.append([v - z for v in row])
    return out


def _build(name: str, kind: str = "classification", data: LossData | None = None, **params):
    return build_loss(name, params, kind, data or LossData())


def test_every_configured_loss_is_registered_and_back():
    assert set(LOSS_SPECS) == set(LOSSES.names())


def test_cross_entropy():
    lp = _logp()
    want = -sum(lp[i][y] for i, y in enumerate(LABELS.tolist())) / 4
    assert _build("cross_entropy")(LOGITS, LABELS).item() == pytest.approx(want, rel=1e-6)


def test_label_smoothing():
    eps, lp, k = 0.2, _logp(), 3
    # target distribution: 1 - eps on the label plus eps / k on every class
    want = sum(-sum(((1 - eps) * (c == y) + eps / k) * lp[i][c] for c in range(k))
               for i, y in enumerate(LABELS.tolist())) / 4
    assert _build("label_smoothing", smoothing=eps)(LOGITS, LABELS).item() == pytest.approx(want, rel=1e-6)


def test_focal():
    g, lp = 2.0, _logp()
    want = sum(-((1 - math.exp(lp[i][y])) ** g) * lp[i][y] for i, y in enumerate(LABELS.tolist())) / 4
    assert _build("focal", gamma=g)(LOGITS, LABELS).item() == pytest.approx(want, rel=1e-6)
    # gamma 0 is plain cross-entropy
    assert _build("focal", gamma=0.0)(LOGITS, LABELS).item() == pytest.approx(
        _build("cross_entropy")(LOGITS, LABELS).item(), rel=1e-6)


def test_class_weighted_uses_train_counts():
    assert balanced_weights([6, 2, 0]) == pytest.approx([8 / 18, 8 / 6, 0.0])
    counts = [1, 1, 2]
    w = [4 / (3 * c) for c in counts]
    lp = _logp()
    y = LABELS.tolist()
    want = -sum(w[t] * lp[i][t] for i, t in enumerate(y)) / sum(w[t] for t in y)
    loss = _build("class_weighted", data=LossData(label_counts=counts))
    assert loss(LOGITS, LABELS).item() == pytest.approx(want, rel=1e-6)


def test_classification_task_counts_labels_from_train_features():
    task = get_task("classification")
    feats = [{"input_ids": [1], "labels": y} for y in [0, 0, 0, 1]]
    task.use_loss(ClassWeightedSpec(), feats, labels=["neg", "pos", "meh"])  # "meh" never occurs in train
    assert task._loss.weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_answer_only_scores_answer_tokens_shifted():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 1, 2, 6, 5]])
    terms = []
    for b in range(2):
        for t in range(1, 5):  # token t is predicted at position t - 1
            if labels[b, t] != -100:
                terms.append(-torch.log_softmax(logits[b, t - 1], -1)[labels[b, t]].item())
    got = _build("answer_only", kind="token")(logits, labels).item()
    assert got == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_mse():
    pred, y = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([0.0, 2.0, 2.0])
    assert _build("mse", kind="regression")(pred, y).item() == pytest.approx((1 + 0 + 4) / 3)


def test_bce():
    logits, y = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    want = -(math.log(1 / (1 + math.exp(-2.0))) + math.log(1 - 1 / (1 + math.exp(1.0)))) / 2
    assert _build("bce", kind="multilabel")(logits, y).item() == pytest.approx(want, rel=1e-6)


def test_a_loss_for_another_task_is_refused_with_the_names_that_fit():
    with pytest.raises(ValueError, match=r"'focal' scores classification outputs.*\['answer_only'\]"):
        _build("focal", kind="token")
    with pytest.raises(UnknownPluginError, match="known: answer_only, bce, class_weighted"):
        _build("nope")


def test_dotted_path_loss():
    loss = _build("torch.nn:L1Loss", kind="classification", reduction="sum")
    assert loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])).item() == 4.0
    with pytest.raises(ValueError, match=r"cannot build 'torch\.nn:L1Loss'"):
        _build("torch.nn:L1Loss", bogus=1)
