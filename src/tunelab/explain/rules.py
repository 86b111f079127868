"""Rule-based explanations: a surrogate decision tree fitted on the model's own predictions.

The tree learns to mimic the model (not the gold labels) from word / n-gram presence features of the
train split; each leaf becomes an if-then rule. ``fidelity`` is the tree's agreement with the model on
held-out texts, to be read against ``majority_fidelity`` (always predicting the model's most common
train prediction): a surrogate that does not beat that baseline explains nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.tree import DecisionTreeClassifier

TOKEN_PATTERN = r"(?u)\b\w+\b"  # single-letter words count


@dataclass
class Rule:
    """One leaf of the surrogate tree: IF all conditions hold THEN the model predicts ``label``."""

    conditions: list[tuple[str, bool]]  # (n-gram, present?) from root to leaf
    label: str  # the leaf's majority model prediction
    confidence: float  # share of the leaf's train rows the model predicted ``label``
    coverage: float  # share of held-out texts the rule covers
    support: int  # train rows in the leaf
    heldout_accuracy: float | None  # agreement with the model on covered held-out texts; None if none

    def to_text(self) -> str:
        """One line: ``IF "a" present AND "b" absent THEN label  (confidence …, train support …, …)``."""
        if self.conditions:
            cond = " AND ".join(f'"{g}" {"present" if p else "absent"}' for g, p in self.conditions)
        else:
            cond = "(always)"
        return (
            f"IF {cond} THEN {self.label}  (confidence {self.confidence:.2f}, train support {self.support}, "
            f"held-out coverage {100 * self.coverage:.1f}%)"
        )


@dataclass
class RuleSet:
    """The surrogate's rules (by train support, descending) and how faithfully it mimics the model."""

    rules: list[Rule]
    fidelity: float  # held-out agreement between the tree and the model
    train_fidelity: float
    majority_fidelity: float  # held-out agreement of always predicting ``majority_label``
    n_train: int
    n_heldout: int
    labels: list[str]  # sorted distinct model predictions (train and held-out)
    depth: int
    n_leaves: int
    majority_label: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; conditions become ``{"ngram": str, "present": bool}``."""
        out = asdict(self)
        out["rules"] = [
            {**asdict(r), "conditions": [{"ngram": g, "present": p} for g, p in r.conditions]}
            for r in self.rules
        ]
        return out

    def to_text(self) -> str:
        """A header stating fidelity vs the majority baseline, then one rule per line."""
        beats = "beats" if self.fidelity > self.majority_fidelity else "does NOT beat"
        lines = [
            f"Surrogate decision tree (depth {self.depth}, {self.n_leaves} leaves) fitted on the model's "
            f"predictions for {self.n_train} train texts.",
            f"Held-out fidelity {100 * self.fidelity:.1f}% on {self.n_heldout} texts {beats} the majority "
            f"baseline {100 * self.majority_fidelity:.1f}% (always {self.majority_label}); "
            f"train fidelity {100 * self.train_fidelity:.1f}%.",
        ]
        lines += [r.to_text() for r in self.rules]
        return "\n".join(lines)


def _check(
    train_texts: list[str], train_pred: list[str], heldout_texts: list[str], heldout_pred: list[str]
) -> None:
    if not train_texts:
        raise ValueError("fit_rules needs at least one train text (train_texts is empty)")
    if len(train_texts) != len(train_pred):
        raise ValueError(
            f"train_texts and train_pred differ in length ({len(train_texts)} vs {len(train_pred)})"
        )
    if not heldout_texts:
        raise ValueError(
            "fit_rules needs at least one held-out text to measure fidelity (heldout_texts is empty)"
        )
    if len(heldout_texts) != len(heldout_pred):
        raise ValueError(
            f"heldout_texts and heldout_pred differ in length ({len(heldout_texts)} vs {len(heldout_pred)})"
        )


def _agreement(a: np.ndarray, b: np.ndarray | str) -> float:
    return float(np.mean(a == b)) if len(a) else 0.0


def _constant(
    train_pred: np.ndarray, heldout_pred: np.ndarray, labels: list[str], params: dict[str, Any]
) -> RuleSet:
    """One unconditional rule: a single predicted class, or texts with no usable word."""
    counts = Counter(train_pred.tolist())
    label = min(counts, key=lambda lab: (-counts[lab], lab))
    fid = _agreement(heldout_pred, label)
    rule = Rule([], label, counts[label] / len(train_pred), 1.0, len(train_pred), fid)
    return RuleSet(
        rules=[rule],
        fidelity=fid,
        train_fidelity=_agreement(train_pred, label),
        majority_fidelity=fid,
        n_train=len(train_pred),
        n_heldout=len(heldout_pred),
        labels=labels,
        depth=0,
        n_leaves=1,
        majority_label=label,
        params=params,
    )


def fit_rules(
    train_texts: list[str],
    train_pred: list[str],
    heldout_texts: list[str],
    heldout_pred: list[str],
    *,
    max_depth: int = 4,
    max_features: int = 2000,
    ngram_max: int = 2,
    min_samples_leaf: int = 5,
    seed: int = 0,
) -> RuleSet:
    """Fit a surrogate tree on the model's predictions over n-gram presence and return its rules.

    Raises ValueError on empty or mismatched inputs and on invalid settings.
    """
    _check(train_texts, train_pred, heldout_texts, heldout_pred)
    for name, value in [
        ("max_depth", max_depth),
        ("max_features", max_features),
        ("ngram_max", ngram_max),
        ("min_samples_leaf", min_samples_leaf),
    ]:
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    params = {
        "max_depth": max_depth,
        "max_features": max_features,
        "ngram_max": ngram_max,
        "min_samples_leaf": min_samples_leaf,
        "seed": seed,
    }
    y_train = np.asarray([str(p) for p in train_pred], dtype=object)
    y_held = np.asarray([str(p) for p in heldout_pred], dtype=object)
    labels = sorted(set(y_train.tolist()) | set(y_held.tolist()))
    majority = Counter(y_train.tolist())
    majority_label = min(majority, key=lambda lab: (-majority[lab], lab))
    if len(majority) == 1:
        return _constant(y_train, y_held, labels, params)

    vec = CountVectorizer(
        binary=True,
        ngram_range=(1, ngram_max),
        max_features=max_features,
        lowercase=True,
        token_pattern=TOKEN_PATTERN,
    )
    try:
        x_train = vec.fit_transform(train_texts)
    except ValueError:  # empty vocabulary: no text has a word
        return _constant(y_train, y_held, labels, params)
    x_held = vec.transform(heldout_texts)
    names = vec.get_feature_names_out()

    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=seed)
    tree.fit(x_train, y_train)
    fidelity = _agreement(tree.predict(x_held), y_held)
    train_fidelity = _agreement(tree.predict(x_train), y_train)
    majority_fidelity = _agreement(y_held, majority_label)

    t = tree.tree_
    leaf_train, leaf_held = tree.apply(x_train), tree.apply(x_held)
    rules: list[Rule] = []
    stack: list[tuple[int, list[tuple[str, bool]]]] = [(0, [])]
    while stack:
        node, conds = stack.pop()
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left != right:  # split: features are 0/1, threshold 0.5; left is "absent"
            gram = str(names[t.feature[node]])
            stack += [(right, [*conds, (gram, True)]), (left, [*conds, (gram, False)])]
            continue
        label = str(tree.classes_[int(np.argmax(t.value[node][0]))])
        in_train, in_held = y_train[leaf_train == node], y_held[leaf_held == node]
        rules.append(
            Rule(
                conditions=conds,
                label=label,
                confidence=_agreement(in_train, label),
                coverage=len(in_held) / len(y_held),
                support=len(in_train),
                heldout_accuracy=_agreement(in_held, label) if len(in_held) else None,
            )
        )
    rules.sort(key=lambda r: -r.support)  # stable: ties keep tree order
    return RuleSet(
        rules=rules,
        fidelity=fidelity,
        train_fidelity=train_fidelity,
        majority_fidelity=majority_fidelity,
        n_train=len(y_train),
        n_heldout=len(y_held),
        labels=labels,
        depth=int(tree.get_depth()),
        n_leaves=int(tree.get_n_leaves()),
        majority_label=majority_label,
        params=params,
    )
