"""Labels that are not one string: label sets (tuples) and numbers, through every data step."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from tunelab.config.data import DataConfig, SplitConfig
from tunelab.data import report as rep
from tunelab.data.clean import CleanContext, build_steps, run_steps
from tunelab.data.dedup import resolve_conflicts
from tunelab.data.errors import DataError
from tunelab.data.records import Record, label_parts, show_label
from tunelab.data.split import _strata, assign
from tunelab.data.stage import _check_eval_labels, _output_row


def rec(label, text: str = "t", pin: str | None = None) -> Record:
    return Record(source="f:1", raw={"text": text}, origin=0, text=text, label=label, pin=pin)


def clean(records: list[Record], allowed: list[str] | None = None, **labels) -> tuple[list[Record], list]:
    cfg = DataConfig(sources=[{"path": "x.jsonl"}], clean={"labels": labels})
    dropped: list = []
    steps = build_steps(cfg, CleanContext(task="labelled", allowed_labels={0: allowed}))
    return run_steps(records, steps, lambda *a: dropped.append(a[:2])), dropped


def test_label_sets_are_normalised_member_by_member():
    kept, dropped = clean(
        [rec(("Sports ", "news", "NEWS")), rec(("pol",)), rec(("  ",))], map={"pol": "politics"}
    )
    assert [r.label for r in kept] == [("news", "sports"), ("politics",)]
    assert dropped == [("labels", "empty label set")]


def test_every_member_of_a_label_set_must_be_allowed():
    kept, dropped = clean([rec(("a", "b")), rec(("a", "zz"))], allowed=["a", "b"])
    assert [r.label for r in kept] == [("a", "b")]
    assert dropped == [("labels", "label 'zz' is not in the allowed labels ['a', 'b']")]


def test_numbers_pass_the_label_step_untouched():
    kept, dropped = clean([rec(0.0), rec(-2.5)], allowed=["a"])
    assert [r.label for r in kept] == [0.0, -2.5] and not dropped


def test_conflicts_compare_whole_labels():
    rows = [rec(("a",), "same"), rec(("a", "b"), "same"), rec(1.5, "num"), rec(1.5, "num"), rec(2.0, "num")]
    dropped: list = []
    kept, groups = resolve_conflicts(rows, "majority", lambda *a: dropped.append(a[1]))
    assert groups == 2 and [r.label for r in kept] == [1.5, 1.5]
    assert "labels [a] (1), [a, b] (1)" in dropped[0]
    assert dropped[-1].endswith("labels 1.5 (2), 2 (1); kept label '1.5'")


def test_numeric_labels_are_stratified_by_quantile_bins():
    rng = random.Random(0)
    rows = [rec(rng.gauss(0, 1), f"t{i}") for i in range(500)]
    strata = _strata(rows, True)
    assert Counter(strata) == {f"quantile-{k}": 100 for k in range(5)}  # five equal bins
    splits, _ = assign(rows, SplitConfig(validation=0.2, test=0.2), seed=1)
    for s in ("validation", "test"):
        values = np.array([r.label for r, sp in zip(rows, splits, strict=True) if sp == s])
        # each split holds its share of every bin, so its spread matches the whole set's
        assert len(values) == 100 and abs(np.median(values) - np.median([r.label for r in rows])) < 0.15
    assert _strata([rec(("a", "b")), rec("x"), rec(None)], True) == [("a", "b"), "x", ""]
    assert _strata(rows[:3], False) == ["", "", ""]


def test_report_counts_members_and_summarises_numbers():
    assert rep.label_distribution([rec(("a", "b")), rec(("a",))]) == {"a": 2, "b": 1}
    assert rep.label_distribution([rec(1.0), rec(2.0)]) == {}
    want = {"count": 3, "min": 1.0, "mean": 3.0, "max": 6.0}
    assert rep.label_values([rec(1.0), rec(2.0), rec(6.0)]) == want
    assert rep.label_values([rec("a")]) is None
    assert rep.example_row(rec(("a", "b")))["label"] == ["a", "b"]


def test_eval_labels_check_each_member_and_skip_numbers():
    by_split = {"train": [rec(("a", "b"))], "validation": [rec(("a",), pin="validation")],
                "test": [rec(("b", "new"), pin="test")]}
    with pytest.raises(DataError, match="label 'new' of this test row never appears in train"):
        _check_eval_labels(by_split, "labelled")
    _check_eval_labels({"train": [rec(1.0)], "validation": [], "test": [rec(9.0, pin="test")]}, "labelled")


def test_output_rows_write_label_sets_as_lists():
    cfg = DataConfig(sources=[{"path": "x.jsonl"}])
    assert _output_row(rec(("a", "b")), "labelled", cfg)["label"] == ["a", "b"]
    assert _output_row(rec(2.5), "labelled", cfg)["label"] == 2.5


def test_label_helpers():
    assert label_parts(("a", "b")) == ("a", "b") and label_parts("a") == ("a",) and label_parts(1.0) == ()
    assert show_label(("a", "b")) == "[a, b]" and show_label(2.50) == "2.5" and show_label("x") == "x"
