"""Data preflight: sources exist and read, mapped columns exist, label settings fit the rows."""

from __future__ import annotations

import json

import pytest
from tests.helpers import qa_rows, sentiment_rows, write_jsonl
from tests.unit.preflight.conftest import keys

from tunelab.preflight import scan


def _cls(*sources, **data) -> dict:
    return {"data": {"sources": list(sources), **data}, "model": {"name": "minilm"}}


def _sft(*sources, **data) -> dict:
    return {"task": "sft", "data": {"sources": list(sources), **data}, "model": {"name": "smollm2"}}


@pytest.fixture
def reviews(tmp_path):
    return write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(40))


def test_good_sources_of_every_file_format_pass(tmp_path, reviews, preflight):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sentiment_rows(20)
    csv = tmp_path / "r.csv"
    csv.write_text("review,category\n" + "".join(f'"{r["text"]}",{r["label"]}\n' for r in rows))
    tsv = tmp_path / "r.tsv"
    tsv.write_text("text\tlabel\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows))
    parquet = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    folder = tmp_path / "folder"
    for label in ("pos", "neg"):
        (folder / label).mkdir(parents=True)
        (folder / label / "a.txt").write_text(f"a {label} review")
    raw = _cls(
        {"path": str(reviews)},
        {"path": str(csv), "columns": {"text": "review", "label": "category"}},
        {"path": str(tsv)},
        {"path": str(parquet)},
        {"path": str(folder)},
        labels=["pos", "neg"],
    )
    assert preflight(raw) == ([], [])


def test_bundled_sources_pass(preflight):
    assert preflight(_cls({"bundled": "rotten_tomatoes"})) == ([], [])
    assert preflight(_sft({"bundled": "chatterbot"})) == ([], [])


def test_a_saved_dataset_folder_passes_and_a_missing_split_is_named(tmp_path, preflight):
    from datasets import Dataset, DatasetDict

    saved = tmp_path / "saved"
    DatasetDict({"train": Dataset.from_list(sentiment_rows(10))}).save_to_disk(str(saved))
    assert preflight(_cls({"path": str(saved)})) == ([], [])
    problems, _ = preflight(_cls({"path": str(saved), "hub_split": "dev"}))
    assert keys(problems) == ["data.sources.0.hub_split"]
    assert "no split 'dev'" in problems[0]


def test_missing_file_unknown_extension_and_bad_folder(tmp_path, preflight):
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty_folder" / "sub").mkdir(parents=True)
    problems, _ = preflight(
        _cls(
            {"path": str(tmp_path / "nope.jsonl")},
            {"path": str(tmp_path / "notes.txt")},
            {"path": str(tmp_path / "empty_folder")},
            {"path": str(tmp_path / "notes.txt"), "format": "hf_disk"},
        )
    )
    assert keys(problems) == [
        "data.sources.0.path",
        "data.sources.1.path",
        "data.sources.2.path",
        "data.sources.3.format",
    ]
    assert "nope.jsonl not found" in problems[0]
    assert "cannot tell the format" in problems[1] and "set format" in problems[1]
    assert "<label>/*.txt" in problems[2]
    assert "save_to_disk" in problems[3]


def test_a_malformed_json_line_is_reported_with_its_line(tmp_path, preflight):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "a"}\n{"text": oops}\n')
    problems, _ = preflight(_cls({"path": str(bad)}))
    assert keys(problems) == ["data.sources.0.path"]
    assert "bad.jsonl:2" in problems[0]
    assert preflight(_cls({"path": str(bad)}, on_malformed="quarantine"))[0] == [
        # one readable row: a single class, but the check is the point here
        "data.sources.0: every row has label 'a': classification needs at least two classes"
    ]


def test_mapped_columns_must_exist(tmp_path, reviews, preflight):
    problems, _ = preflight(
        _cls({"path": str(reviews), "columns": {"text": "review"}}, {"path": str(reviews), "columns": {}})
    )
    assert keys(problems) == ["data.sources.0.columns.text"]
    assert "no column 'review'" in problems[0] and "'text'" in problems[0]


def test_an_unmapped_missing_column_says_how_to_map_it(tmp_path, preflight):
    rows = write_jsonl(tmp_path / "r.jsonl", [{"body": f"b {i}", "label": "ab"[i % 2]} for i in range(6)])
    problems, _ = preflight(_cls({"path": str(rows)}))
    assert keys(problems) == ["data.sources.0"]
    assert "no column 'text'" in problems[0] and "columns: {text: <your column>}" in problems[0]


def test_label_mapped_to_the_text_column(tmp_path, reviews, preflight):
    problems, _ = preflight(_cls({"path": str(reviews), "columns": {"label": "text"}}))
    assert keys(problems) == ["data.sources.0.columns.label"]
    assert "both mapped to column 'text'" in problems[0]


def test_sft_columns(tmp_path, preflight):
    qa = write_jsonl(tmp_path / "qa.jsonl", qa_rows(10))
    half = write_jsonl(tmp_path / "half.jsonl", [{"prompt": f"q {i}"} for i in range(5)])
    chat = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}],
    )
    plain = write_jsonl(tmp_path / "plain.jsonl", sentiment_rows(4))
    assert preflight(_sft({"path": str(qa)}, {"path": str(chat)})) == ([], [])
    problems, _ = preflight(_sft({"path": str(half)}, {"path": str(plain)}))
    assert keys(problems) == ["data.sources.0", "data.sources.1"]
    assert "no column 'response'" in problems[0]
    assert "sft needs messages, instruction/output or prompt/response" in problems[1]


def test_listed_labels_are_normalised_like_the_data_stage(tmp_path, preflight):
    rows = write_jsonl(
        tmp_path / "r.jsonl", [{"text": f"t {i}", "label": [" Positive", "ＮＥＧ"][i % 2]} for i in range(8)]
    )
    # rows become 'positive' and 'ｎｅｇ' (strip + lower-case; the data stage does not fold width)
    problems, _ = preflight(_cls({"path": str(rows)}, labels=["positive", "ｎｅｇ"]))
    assert problems == []
    problems, _ = preflight(_cls({"path": str(rows)}, labels=["Positive", "neg", "neutral"]))
    assert keys(problems) == ["data.labels.0", "data.labels.1", "data.labels.2"]
    assert "the labels step makes the rows' label 'positive'; write that" in problems[0]
    assert "'ｎｅｇ'; write that" in problems[1]
    assert "label 'neutral' never occurs in the data" in problems[2]


def test_label_map_is_applied_before_the_allow_list(tmp_path, reviews, preflight):
    clean = {"labels": {"map": {"pos": "positive"}}}
    assert preflight(_cls({"path": str(reviews)}, labels=["positive", "neg"], clean=clean)) == ([], [])


def test_labels_without_the_labels_step_are_not_enforced(reviews, preflight):
    problems, _ = preflight(_cls({"path": str(reviews)}, labels=["pos", "neg"], clean={"steps": ["unicode"]}))
    assert keys(problems) == ["data.labels"]
    assert "'labels' cleaning step" in problems[0]


def test_a_single_class_across_the_sources_is_a_problem(tmp_path, preflight):
    pos = write_jsonl(tmp_path / "pos.jsonl", [{"text": f"p {i}", "label": "pos"} for i in range(5)])
    neg = write_jsonl(tmp_path / "neg.jsonl", [{"text": f"n {i}", "label": "neg"} for i in range(5)])
    assert preflight(_cls({"path": str(pos)}, {"path": str(neg)})) == ([], [])  # one file per class
    problems, _ = preflight(_cls({"path": str(pos)}))
    assert keys(problems) == ["data.sources.0"]
    assert "every row has label 'pos'" in problems[0]


def test_labels_on_a_task_without_classes(tmp_path, preflight):
    qa = write_jsonl(tmp_path / "qa.jsonl", qa_rows(5))
    problems, _ = preflight(_sft({"path": str(qa)}, labels=["a"]))
    assert keys(problems) == ["data.labels"]


def test_group_by_column_must_exist(reviews, preflight):
    problems, _ = preflight(_cls({"path": str(reviews)}, split={"group_by": "movie"}))
    assert keys(problems) == ["data.split.group_by"]


def test_a_large_file_is_scanned_by_its_head_and_doubts_become_notes(tmp_path, monkeypatch, preflight):
    monkeypatch.setattr(scan, "WHOLE_FILE_BYTES", 100)
    monkeypatch.setattr(scan, "SCAN_ROWS", 10)
    rows = [{"text": f"t {i}", "label": "pos" if i < 30 else "neg"} for i in range(40)]
    big = write_jsonl(tmp_path / "big.jsonl", rows)
    csv = tmp_path / "big.csv"
    csv.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows))
    for path in (big, csv):
        problems, notes = preflight(_cls({"path": str(path)}, labels=["pos", "neg"]))
        assert problems == []
        assert keys(notes) == ["data.labels.1", "data.sources.0"], notes
        assert "never occurs in the rows scanned (" in notes[0] and ": the first 10" in notes[0]
        assert "every row scanned that data.labels keeps has label 'pos'" in notes[1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n{oops\n" + big.read_text())
    problems, _ = preflight(_cls({"path": str(bad)}))
    assert keys(problems) == ["data.sources.0.path"] and "bad.jsonl:2" in problems[0]


def test_hub_sources_are_notes_offline(preflight):
    problems, notes = preflight(_cls({"hub": "tunelab-tests/no-such-dataset"}))
    assert problems == []
    assert keys(notes) == ["data.sources.0.hub"] and "offline" in notes[0]
