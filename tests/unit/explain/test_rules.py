"""Surrogate-tree rules: they recover a planted trigger word, report fidelity and coverage, fail cleanly."""

from __future__ import annotations

import json
import random

import pytest

from tunelab.explain.rules import Rule, RuleSet, fit_rules

VOCAB = ["the", "a", "movie", "film", "plot", "actor", "scene", "good", "bad", "long", "short", "music"]


def _synthetic(n: int, seed: int) -> tuple[list[str], list[str]]:
    """The "model" predicts pos iff the text contains "zyx"; filler words are random."""
    rng = random.Random(seed)
    texts, preds = [], []
    for _ in range(n):
        words = rng.choices(VOCAB, k=rng.randint(4, 10))
        has = rng.random() < 0.4
        if has:
            words.insert(rng.randrange(len(words) + 1), rng.choice(["zyx", "ZYX", "zyx!"]))
        texts.append(" ".join(words))
        preds.append("pos" if has else "neg")
    return texts, preds


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str], list[str], list[str]]:
    tr, trp = _synthetic(300, seed=1)
    ho, hop = _synthetic(150, seed=2)
    return tr, trp, ho, hop


@pytest.fixture(scope="module")
def ruleset(data) -> RuleSet:
    return fit_rules(*data, max_depth=3, seed=0)


def test_rules_recover_trigger_word(ruleset: RuleSet) -> None:
    assert any(g == "zyx" for r in ruleset.rules for g, _ in r.conditions)
    pos_rules = [r for r in ruleset.rules if r.label == "pos"]
    assert pos_rules and all(("zyx", True) in r.conditions for r in pos_rules)
    assert ruleset.fidelity >= 0.95
    assert ruleset.fidelity > ruleset.majority_fidelity
    assert ruleset.train_fidelity >= 0.95
    assert ruleset.labels == ["neg", "pos"]
    assert ruleset.majority_label == "neg"
    assert (ruleset.n_train, ruleset.n_heldout) == (300, 150)
    assert 1 <= ruleset.depth <= 3
    assert ruleset.n_leaves == len(ruleset.rules)


def test_coverage_support_and_order(ruleset: RuleSet) -> None:
    assert sum(r.coverage for r in ruleset.rules) == pytest.approx(1.0)
    assert sum(r.support for r in ruleset.rules) == ruleset.n_train
    supports = [r.support for r in ruleset.rules]
    assert supports == sorted(supports, reverse=True)
    for r in ruleset.rules:
        assert 0.0 < r.confidence <= 1.0
        assert r.support >= 5  # min_samples_leaf
        assert (r.heldout_accuracy is None) == (r.coverage == 0.0)


def test_deterministic_for_same_seed(data, ruleset: RuleSet) -> None:
    again = fit_rules(*data, max_depth=3, seed=0)
    assert again.to_json() == ruleset.to_json()


def test_text_and_json(ruleset: RuleSet) -> None:
    text = ruleset.to_text()
    lines = text.splitlines()
    assert "fidelity" in lines[0].lower() or "fidelity" in lines[1].lower()
    assert "majority" in text
    rule_lines = [ln for ln in lines if ln.startswith("IF ")]
    assert len(rule_lines) == len(ruleset.rules)
    assert any('"zyx" present' in ln and "THEN pos" in ln for ln in rule_lines)
    assert all(
        "confidence" in ln and "train support" in ln and "held-out coverage" in ln for ln in rule_lines
    )
    js = ruleset.to_json()
    json.dumps(js)
    assert js["fidelity"] == ruleset.fidelity
    assert js["rules"][0]["conditions"][0].keys() == {"ngram", "present"}
    assert set(js["rules"][0]) == {
        "conditions",
        "label",
        "confidence",
        "coverage",
        "support",
        "heldout_accuracy",
    }


def test_rule_text_format() -> None:
    rule = Rule([("great", True), ("boring", False)], "fresh", 0.93, 0.31, 120, 0.9)
    assert rule.to_text() == (
        'IF "great" present AND "boring" absent THEN fresh  '
        "(confidence 0.93, train support 120, held-out coverage 31.0%)"
    )
    assert Rule([], "neg", 1.0, 1.0, 3, None).to_text().startswith("IF (always) THEN neg  (")


def test_single_class_gives_one_unconditional_rule() -> None:
    rs = fit_rules(["a b", "c d", "e f"], ["pos"] * 3, ["a", "z"], ["pos", "neg"])
    assert len(rs.rules) == 1 and rs.rules[0].conditions == []
    assert rs.rules[0].label == "pos" and rs.rules[0].coverage == 1.0 and rs.rules[0].support == 3
    assert rs.fidelity == rs.majority_fidelity == 0.5
    assert (rs.depth, rs.n_leaves) == (0, 1)
    assert rs.labels == ["neg", "pos"]
    assert "IF (always) THEN pos" in rs.to_text()


def test_texts_without_words_give_one_rule() -> None:
    rs = fit_rules(["!!", "?", "..."], ["pos", "neg", "neg"], ["!"], ["neg"])
    assert len(rs.rules) == 1 and rs.rules[0].label == "neg" and rs.fidelity == 1.0


def test_single_letter_words_are_features() -> None:
    texts = ["x a", "x b", "y a", "y b"] * 5
    preds = ["pos", "pos", "neg", "neg"] * 5
    rs = fit_rules(texts, preds, texts, preds, min_samples_leaf=1)
    assert rs.fidelity == 1.0
    assert {g for r in rs.rules for g, _ in r.conditions} <= {"x", "y"}


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([], [], ["a"], ["p"]), "train text"),
        ((["a", "b"], ["p"], ["a"], ["p"]), "differ in length"),
        ((["a"], ["p"], ["a", "b"], ["p"]), "differ in length"),
        ((["a"], ["p"], [], []), "held-out"),
    ],
)
def test_bad_inputs_raise(args, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_rules(*args)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        fit_rules(["a"], ["p"], ["a"], ["p"], max_depth=0)


def test_unsplittable_tree_prints_always_rule() -> None:
    rs = fit_rules(["a b", "c d", "a d"], ["pos", "neg", "neg"], ["a"], ["pos"], min_samples_leaf=5)
    assert (rs.depth, rs.n_leaves) == (0, 1)
    assert rs.rules[0].conditions == [] and rs.rules[0].label == "neg"
    assert rs.rules[0].confidence == pytest.approx(2 / 3)
    assert rs.fidelity == 0.0 and rs.rules[0].heldout_accuracy == 0.0
    assert "IF (always) THEN neg" in rs.to_text()


def test_two_condition_rule_and_coverage_over_many_leaves() -> None:
    """pos iff "zyx" present and "qq" absent: the pos rule needs both conditions."""
    rng = random.Random(5)

    def make(n: int) -> tuple[list[str], list[str]]:
        texts, preds = [], []
        for _ in range(n):
            words = rng.choices(VOCAB, k=6) + [w for w in ("zyx", "qq") if rng.random() < 0.5]
            rng.shuffle(words)
            texts.append(" ".join(words))
            preds.append("pos" if "zyx" in words and "qq" not in words else "neg")
        return texts, preds

    rs = fit_rules(*make(400), *make(200), max_depth=4, seed=3)
    assert rs.fidelity >= 0.95 > rs.majority_fidelity
    assert sum(r.coverage for r in rs.rules) == pytest.approx(1.0)
    pos = [r for r in rs.rules if r.label == "pos"]
    assert pos and all({("zyx", True), ("qq", False)} <= set(r.conditions) for r in pos)
    assert (rs.depth, rs.n_leaves) == (2, 3)
    assert 'IF "zyx" present AND "qq" absent THEN pos  (' in rs.to_text()
