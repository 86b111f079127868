"""Exact and near duplicates in the stage: clusters dropped or kept together, and the leakage check."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tunelab.config import validate_recipe
from tunelab.data.errors import DataError
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl

WORDS = [f"word{i}" for i in range(400)]


def corpus(tmp_path: Path, n: int = 120, copies: int = 30) -> Path:
    """``n`` distinct texts, then ``copies`` near-copies (one word changed) of the first ones."""
    rng = random.Random(0)
    base = [" ".join(rng.sample(WORDS, 25)) for _ in range(n)]
    rows = [{"text": t, "label": "a" if i % 2 else "b"} for i, t in enumerate(base)]
    rows += [
        {"text": " ".join([*base[k].split()[:-1], "changed"]), "label": "a" if k % 2 else "b"}
        for k in range(copies)
    ]
    rows += [{"text": base[0].upper(), "label": "b"}]  # an exact duplicate once normalised
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(tmp_path: Path, path: Path, **dedup: Any):
    r = validate_recipe(
        {
            "run": {"output_dir": str(tmp_path), "name": "r"},
            "data": {
                "sources": [{"path": str(path)}],
                "dedup": dedup,
                "split": {"validation": 0.25, "test": 0.25},
            },
        }
    )
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r)
    out = {s: read_jsonl(run_dir.data / f"{s}.jsonl") for s in ("train", "validation", "test")}
    report = json.loads((run_dir.data / "data_report.json").read_text())
    return out, report, read_jsonl(run_dir.data / "quarantine.jsonl")


def line(source: str) -> int:
    return int(source.rsplit(":", 1)[1])


def test_drop_keeps_one_per_cluster(tmp_path: Path) -> None:
    out, report, q = run(tmp_path, corpus(tmp_path))
    assert report["duplicates"]["exact"]["removed"] == 1
    assert report["duplicates"]["near"]["removed"] == 30 == report["duplicates"]["near"]["clusters"]
    near = [x for x in q if x["step"] == "near_dedup"]
    assert sorted(line(x["source"]) for x in near) == list(range(121, 151))
    for x in near:
        original = int(x["reason"].split(":")[-1].split()[0])
        assert line(x["source"]) - original == 120 and "Jaccard 0.9" in x["reason"]
    assert sum(len(v) for v in out.values()) == 120


def test_keep_together_puts_a_cluster_in_one_split(tmp_path: Path) -> None:
    out, report, _ = run(tmp_path, corpus(tmp_path), near={"action": "keep_together"})
    assert report["duplicates"]["near"]["removed"] == 0 and report["duplicates"]["near"]["clusters"] == 30
    split_of = {line(x["source"]): s for s, rows in out.items() for x in rows}
    assert len(split_of) == 150
    for k in range(30):
        assert split_of[k + 1] == split_of[121 + k]
    assert report["summary"]["leakage_pairs"] == 0


def test_leakage_is_caught_when_near_dedup_is_off(tmp_path: Path) -> None:
    path = corpus(tmp_path)
    with pytest.raises(DataError, match=r"near-duplicate pair\(s\) straddle splits.*dedup.leakage: warn"):
        run(tmp_path, path, near={"enabled": False})
    out, report, _ = run(tmp_path, path, near={"enabled": False}, leakage="warn")
    leak = report["duplicates"]["leakage"]
    assert leak["pairs"] > 0 and leak["examples"][0]["a_split"] != leak["examples"][0]["b_split"]
    assert any("straddle" in w for w in report["warnings"])
    split_of = {line(x["source"]): s for s, rows in out.items() for x in rows}
    straddling = sum(split_of[k + 1] != split_of[121 + k] for k in range(30))
    assert leak["pairs"] == straddling  # the check finds exactly the planted pairs that straddle


def test_dedup_false_shorthand(tmp_path: Path) -> None:
    r = validate_recipe({"data": {"sources": [{"path": "x.jsonl"}], "dedup": False}})
    assert not r.data.dedup.exact and not r.data.dedup.near.enabled and r.data.dedup.leakage == "error"


def test_conflicting_labels_majority_and_drop() -> None:
    from tunelab.data.dedup import resolve_conflicts
    from tunelab.data.records import Record

    def recs() -> list[Record]:
        rows = [
            ("Great film", "pos"),
            ("great  FILM", "pos"),
            ("Great film", "neg"),
            ("tie", "a"),
            ("Tie", "b"),
            ("alone", "a"),
        ]
        return [
            Record(source=f"f:{i}", raw=None, origin=0, text=t, label=lab) for i, (t, lab) in enumerate(rows)
        ]

    dropped: list[tuple] = []
    kept, groups = resolve_conflicts(recs(), "majority", lambda *a: dropped.append(a))
    assert groups == 2
    assert [(r.text, r.label) for r in kept] == [
        ("Great film", "pos"),
        ("great  FILM", "pos"),
        ("alone", "a"),
    ]
    assert [d[2] for d in dropped] == ["f:2", "f:3", "f:4"]  # the minority label, and both sides of a tie
    assert "kept label 'pos'" in dropped[0][1] and "kept label" not in dropped[1][1]
    dropped.clear()
    kept, _ = resolve_conflicts(recs(), "drop", lambda *a: dropped.append(a))
    assert [r.text for r in kept] == ["alone"] and len(dropped) == 5
    kept, groups = resolve_conflicts(recs(), "keep", lambda *a: None)
    assert len(kept) == 6 and groups == 0
