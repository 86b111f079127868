"""Group metrics agree with fairlearn's; undersized groups are reported, not gated; gates name breaches."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    selection_rate,
)

from tunelab.audit.config import AuditConfig, GateConfig
from tunelab.audit.gates import check
from tunelab.audit.groups import group_metrics


def _fixture(seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = rng.choice(["a", "b"], size=300).tolist()[:280] + ["c"] * 20  # c: too small to judge
    gold = rng.choice(["neg", "pos"], size=300).tolist()
    pred = [
        g if rng.random() < (0.9 if grp == "a" else 0.6) else ("pos" if g == "neg" else "neg")
        for g, grp in zip(gold, groups, strict=True)
    ]
    return gold, pred, groups


def test_binary_group_metrics_equal_fairlearn_and_small_groups_are_left_out():
    gold, pred, groups = _fixture()
    out = group_metrics(
        gold, pred, groups, ["neg", "pos"], min_size=40, bootstrap_samples=50, confidence=0.9, seed=0
    )
    assert out["insufficient"] == ["c"] and out["sizes"]["c"] < 40
    keep = np.array([g != "c" for g in groups])
    yt = (np.array(gold) == "pos").astype(int)[keep]
    yp = (np.array(pred) == "pos").astype(int)[keep]
    grp = np.array(groups)[keep]
    assert out["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(yt, yp, sensitive_features=grp)
    )
    assert out["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(yt, yp, sensitive_features=grp)
    )
    frame = MetricFrame(metrics=selection_rate, y_true=yt, y_pred=yp, sensitive_features=grp)
    for g in ("a", "b"):
        assert out["per_class"]["pos"]["by_group"][g]["selection_rate"]["value"] == pytest.approx(
            frame.by_group[g]
        )
        acc = np.mean(np.array(gold)[np.array(groups) == g] == np.array(pred)[np.array(groups) == g])
        assert out["accuracy"][g]["value"] == pytest.approx(acc)
        assert out["accuracy"][g]["low"] <= acc <= out["accuracy"][g]["high"]
    assert "c" not in out["accuracy"]


def test_multiclass_is_one_vs_rest_not_a_crash():
    rng = np.random.default_rng(1)
    labels = ["x", "y", "z"]
    gold = rng.choice(labels, 200).tolist()
    pred = rng.choice(labels, 200).tolist()
    groups = rng.choice(["a", "b"], 200).tolist()
    out = group_metrics(gold, pred, groups, labels, min_size=10, bootstrap_samples=20, confidence=0.9, seed=0)
    assert set(out["per_class"]) == set(labels)
    assert out["demographic_parity_difference"] == max(
        c["demographic_parity_difference"] for c in out["per_class"].values()
    )


def test_gates_name_each_breach_and_skip_missing_figures():
    cf = {
        "gender": {"flip_rate": {"value": 0.3}, "n_pairs": 10},
        "age": {"flip_rate": {"value": 0.01}, "n_pairs": 4},
    }
    base = {"gender": {"flip_rate": {"value": 0.1}}}
    got = check(GateConfig(flip_rate=0.2, regression=0.1), cf, {"demographic_parity_difference": None}, base)
    assert not got["passed"] and len(got["breaches"]) == 2
    assert "audit.gates.flip_rate=0.2" in got["breaches"][0] and "gender" in got["breaches"][0]
    assert "worse" in got["breaches"][1] and "audit.gates.regression" in got["breaches"][1]
    assert check(GateConfig(flip_rate=0.5, regression=None), cf, None, None)["passed"]


def test_unknown_categories_and_gates_are_config_errors():
    with pytest.raises(ValueError, match="caste"):
        AuditConfig(categories=["gender", "caste"])
    assert AuditConfig(categories=["caste"], word_lists={"caste": "caste.tsv"}).categories == ["caste"]
    with pytest.raises(ValueError, match="accuracy_drop"):
        GateConfig(accuracy_drop=0.1)
