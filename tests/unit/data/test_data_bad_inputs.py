"""The bad-input corpus (tests/data/bad_inputs): every kind is quarantined with a reason and its place,
or stops with a DataError naming file and line; never a traceback from a library, never a silent drop."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tunelab.config import validate_recipe
from tunelab.data.errors import DataError
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl

BAD = Path(__file__).resolve().parents[2] / "data" / "bad_inputs"


def run(tmp_path: Path, path: Path, task: str = "classification", **data: Any) -> tuple[dict, list[dict]]:
    r = validate_recipe(
        {
            "task": task,
            "run": {"output_dir": str(tmp_path), "name": "r"},
            "data": {"sources": [{"path": str(path)}], **data},
        }
    )
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r)
    report = json.loads((run_dir.data / "data_report.json").read_text())
    s = report["summary"]
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"]  # nothing dropped silently
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    for row in q:
        assert row["reason"] and row["step"] and re.search(rf"{re.escape(path.name)}:\d+$", row["source"])
    return report, q


def where(q: list[dict]) -> dict[int, tuple[str, str]]:
    """line -> (step, reason)"""
    return {int(x["source"].rsplit(":", 1)[1]): (x["step"], x["reason"]) for x in q}


def test_invalid_utf8_is_quarantined(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "invalid_utf8.jsonl")
    assert where(q) == {2: ("read", where(q)[2][1])} and "invalid UTF-8" in where(q)[2][1]
    assert report["summary"]["rows_kept"] == 2


def test_bom_is_ignored(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "bom.csv")
    assert q == [] and report["summary"]["rows_kept"] == 2


def test_ragged_csv_rows(tmp_path: Path) -> None:
    _report, q = run(tmp_path, BAD / "ragged.csv")
    w = where(q)
    assert set(w) == {3, 4} and all(step == "read" for step, _ in w.values())
    assert "3 fields but the header has 2" in w[3][1] and "1 fields" in w[4][1]


def test_missing_values(tmp_path: Path) -> None:
    _, q = run(tmp_path, BAD / "missing_values.csv")
    w = where(q)
    assert w[3][0] == "format" and "missing label" in w[3][1]
    assert w[4][0] == "format" and "missing text" in w[4][1]


def test_empty_text(tmp_path: Path) -> None:
    _, q = run(tmp_path, BAD / "empty_text.jsonl")
    w = where(q)
    assert w[2] == ("format", "missing text (column 'text')")
    assert w[3] == ("length", "empty text after cleaning")


def test_ten_megabyte_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    rows = [
        {"text": "a normal row", "label": "pos"},
        {"text": "word " * 2_100_000, "label": "neg"},
        {"text": "another normal row", "label": "neg"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert path.stat().st_size > 10_000_000
    _, q = run(tmp_path, path)
    w = where(q)
    assert list(w) == [2] and w[2][0] == "length" and "above max_chars 100,000" in w[2][1]
    assert len(json.dumps(q[0])) < 5000  # the quarantined copy is shortened


def test_wrong_types(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "wrong_types.jsonl")
    w = where(q)
    assert "text (column 'text') must be a string, got int" in w[2][1]
    assert "got list" in w[3][1]
    assert "label must be a single string or integer, got dict" in w[4][1]
    assert report["summary"]["rows_kept"] == 2  # the integer label 1 is read as "1"


def test_unknown_labels(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "unknown_labels.jsonl", labels=["pos", "neg"])
    assert where(q) == {3: ("labels", "label 'maybe' is not in the allowed labels ['neg', 'pos']")}
    assert report["summary"]["rows_kept"] == 2  # "NEG " is normalised to "neg", not rejected


def test_chat_row_with_bad_role(tmp_path: Path) -> None:
    _, q = run(tmp_path, BAD / "bad_role.jsonl", task="sft")
    w = where(q)
    assert "role 'bot'" in w[2][1]
    assert "last message has role 'user'" in w[3][1]
    assert "messages must be a non-empty list" in w[4][1]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("empty.jsonl", r"empty\.jsonl:1: the file is empty"),
        ("does_not_exist.jsonl", r"does_not_exist\.jsonl: file not found"),
        ("mixed_formats.jsonl", r"mixed_formats\.jsonl:4: not valid JSON"),
        ("malformed.jsonl", r"malformed\.jsonl:3: not valid JSON .*on_malformed"),
        ("csv_named.jsonl", r"csv_named\.jsonl:1: not valid JSON.*set format: csv"),
        ("not_parquet.parquet", r"not_parquet\.parquet: not a readable Parquet file"),
        ("unterminated_quote.csv", r"unterminated_quote\.csv:4: a quote opened on line 4 is never closed"),
    ],
)
def test_file_level_problems_stop_with_place(tmp_path: Path, name: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        run(tmp_path, BAD / name)


def test_mixed_formats_quarantined_when_asked(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "mixed_formats.jsonl", on_malformed="quarantine")
    w = where(q)
    assert w[2][0] == "format" and "looks like chat data" in w[2][1]
    assert w[3] == ("read", "the line is a JSON list, not an object")
    assert w[4][0] == "read" and "not valid JSON" in w[4][1]
    assert report["summary"]["rows_kept"] == 2


def test_unterminated_quote_quarantines_its_line_only(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "unterminated_quote.csv", on_malformed="quarantine")
    w = where(q)
    assert list(w) == [4] and w[4][0] == "read" and "never closed" in w[4][1]
    assert report["summary"]["rows_read"] == 8 and report["summary"]["rows_kept"] == 7


def test_messy_text_is_cleaned_not_dropped(tmp_path: Path) -> None:
    r = validate_recipe(
        {
            "run": {"output_dir": str(tmp_path), "name": "r"},
            "data": {
                "sources": [{"path": str(BAD / "messy_text.jsonl")}],
                "split": {"test": 0.0, "validation": 0.0},
            },
        }
    )
    run_stage("data", r)
    texts = {x["text"] for x in read_jsonl(r.run_dir_path() / "data" / "train.jsonl")}
    assert texts == {"Tabs and zerowidth bold & entities", "Only this"}


def test_conflicting_labels(tmp_path: Path) -> None:
    report, q = run(tmp_path, BAD / "conflicting.jsonl")
    w = where(q)
    assert set(w) == {1, 2} and all(s == "conflicts" for s, _ in w.values())
    assert "labels neg (1), pos (1)" in w[1][1]
    assert report["duplicates"]["conflicting_label_groups"] == 1
