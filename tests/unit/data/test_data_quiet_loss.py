"""Ways the data stage used to lose data without a word or accept wrong input: each now either stops
with a DataError that names the place and the fix, or keeps every row accounted for (read = kept +
quarantined) and says so in the report's warnings (also returned in the stage's metrics)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.helpers import REVIEW_WORDS

from tunelab.config import validate_recipe
from tunelab.data import report as rep
from tunelab.data import stage as data_stage
from tunelab.data.errors import DataError
from tunelab.data.records import Record
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl
from tunelab.tasks import get_task


def texts(n: int, seed: str = "t") -> list[str]:
    """Distinct texts (random word choices: no near-duplicates)."""
    rng = random.Random(seed)
    return [f"{' '.join(rng.sample(REVIEW_WORDS, 8))} number {i}" for i in range(n)]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def recipe(tmp_path: Path, sources: list[dict[str, Any]], task: str = "classification", **data: Any):
    return validate_recipe(
        {
            "task": task,
            "run": {"output_dir": str(tmp_path / "runs"), "name": "r"},
            "data": {"sources": sources, **data},
        }
    )


def stage(tmp_path: Path, sources: list[dict[str, Any]], **data: Any):
    """Run the data stage; returns (metrics, report, quarantine rows, split rows)."""
    r = recipe(tmp_path, sources, **data)
    res = run_stage("data", r)
    run_dir = RunDir(r.run_dir_path())
    report = json.loads((run_dir.data / "data_report.json").read_text())
    s = report["summary"]
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"] and s["reconciles"]
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    out = {sp: read_jsonl(run_dir.data / f"{sp}.jsonl") for sp in ("train", "validation", "test")}
    return res.metrics, report, q, out


def rows(out: dict[str, list[dict]]) -> list[dict]:
    return [x for v in out.values() for x in v]


NO_EVAL = {"split": {"validation": 0.0, "test": 0.0}}


# 1. the recipe's data.labels are normalised like the rows' labels; a listed label never seen stops


def test_recipe_labels_are_normalised_like_row_labels(tmp_path: Path) -> None:
    # rows: "pos" / "neg" and a decomposed "cafe\u0301"; the recipe writes them capitalised / composed
    labels = ["pos", "NEG ", "cafe\u0301"]
    data = [{"text": t, "label": labels[i % 3]} for i, t in enumerate(texts(30))]
    path = jsonl(tmp_path / "d.jsonl", data)
    metrics, _, q, out = stage(tmp_path, [{"path": str(path)}], labels=["Pos", "neg", "Café"], **NO_EVAL)
    assert q == [] and metrics["rows_kept"] == 30
    assert {x["label"] for x in rows(out)} == {"pos", "neg", "café"}


def test_recipe_label_matches_a_map_target(tmp_path: Path) -> None:
    data = [{"text": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(20))]
    path = jsonl(tmp_path / "d.jsonl", data)
    _, _, q, out = stage(
        tmp_path,
        [{"path": str(path)}],
        labels=["Positive", "neg"],
        clean={"labels": {"map": {"POS": "Positive"}}},
        **NO_EVAL,
    )
    assert q == [] and {x["label"] for x in rows(out)} == {"Positive", "neg"}


def test_listed_label_that_never_occurs_is_an_error(tmp_path: Path) -> None:
    data = [{"text": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(20))]
    path = jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(DataError, match=r"data\.labels: 'neutral' never occur.*\['neg', 'pos'\].*map") as e:
        run_stage("data", recipe(tmp_path, [{"path": str(path)}], labels=["pos", "neg", "neutral"]))
    assert "fix the name in data.labels" in e.value.hint


# 2. an unterminated quote in a CSV


RUNAWAY = (
    "text,label\n"
    "first fine row,pos\n"
    "second fine row,neg\n"
    '"this quote is never closed,pos\n'  # line 4
    "fourth row,neg\n"
    "fifth row,pos\n"
    "sixth row,neg\n"
    '"a properly quoted, row",pos\n'  # the quote here used to close the runaway field
    "last row,neg\n"
)


def test_runaway_quote_stops_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(RUNAWAY)
    with pytest.raises(DataError, match=r"q\.csv:4: a quote opened on line 4 is never closed") as e:
        run_stage("data", recipe(tmp_path, [{"path": str(path)}]))
    assert "close the quote on line 4" in e.value.hint and "on_malformed: quarantine" in e.value.hint


@pytest.mark.parametrize(
    ("content", "bad_line", "n_rows"),
    [
        (RUNAWAY, 4, 8),
        # open at the end of the file, in the text column: one field swallows the rest
        ('text,label\none,pos\n"two,neg\nthree,pos\nfour,neg\nfive,pos\n', 3, 5),
        # open in the last column: the swallowing row even had the right number of fields
        ('text,label\none,pos\ntwo,"neg\nthree,pos\nfour,neg\nfive,pos\n', 3, 5),
    ],
)
def test_runaway_quote_quarantines_one_line_and_reads_on(
    tmp_path: Path, content: str, bad_line: int, n_rows: int
) -> None:
    path = tmp_path / "q.csv"
    path.write_text(content)
    metrics, _, q, out = stage(tmp_path, [{"path": str(path)}], on_malformed="quarantine", **NO_EVAL)
    assert metrics["rows_read"] == n_rows  # every line of the file is a row, counted once
    assert len(q) == 1 and q[0]["step"] == "read" and q[0]["source"] == f"{path}:{bad_line}"
    assert "never closed" in q[0]["reason"]
    assert metrics["rows_kept"] == n_rows - 1 == len(rows(out))


def test_multiline_quoted_field_is_still_one_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('text,label\n"para one\npara two, still one field",pos\nnext row,neg\nthird,neg\n')
    metrics, _, q, out = stage(tmp_path, [{"path": str(path)}], **NO_EVAL)
    assert q == [] and metrics["rows_read"] == 3
    assert "para one\npara two, still one field" in {x["text"] for x in rows(out)}


# 3. text folders: hidden things ignored, other files counted and quarantined


def test_text_folder_skips_hidden_and_counts_other_files(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    for label, names in {"pos": ["a.txt", "b.txt"], "neg": ["c.txt", "d.TXT"]}.items():
        (root / label).mkdir(parents=True)
        for i, n in enumerate(names):
            (root / label / n).write_text(f"{label} review {i} {texts(4, label)[i]}")
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "a-checkpoint.txt").write_text("not a label")
    (root / "pos" / ".ipynb_checkpoints").mkdir()
    (root / "pos" / ".ipynb_checkpoints" / "a-checkpoint.txt").write_text("not a row")
    (root / "pos" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "pos" / "notes.md").write_text("# notes")
    (root / "README.txt").write_text("top level")
    (root / "neg" / "more").mkdir()
    (root / "neg" / "more" / "e.txt").write_text("nested too deep")
    metrics, report, q, out = stage(tmp_path, [{"path": str(root)}], **NO_EVAL)
    assert {x["label"] for x in rows(out)} == {"pos", "neg"} and len(rows(out)) == 4
    assert metrics["rows_read"] == 7 and metrics["rows_quarantined"] == 3
    got = {x["source"].rsplit("/", 1)[1]: x for x in q}
    assert set(got) == {"notes.md", "README.txt", "e.txt"}
    assert all(x["step"] == "read" and x["reason"].startswith("skipped: ") for x in q)
    skipped = report["skipped"]
    assert skipped["files"] == 3 and skipped["hidden_ignored"] == 4
    assert {k: v["count"] for k, v in skipped["by_reason"].items()} == {
        "not a .txt file": 1,
        "a file at the top level, not inside a <label>/ folder": 1,
        "nested deeper than <root>/<label>/": 1,
    }
    assert skipped["by_reason"]["not a .txt file"]["examples"] == [f"{root}/pos/notes.md"]
    assert any("3 file(s) skipped" in w for w in metrics["warnings"])


# 4. accepted but wrong


def test_single_class_is_an_error(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "one.jsonl", [{"text": t, "label": "pos"} for t in texts(20)])
    with pytest.raises(DataError, match=r"one\.jsonl: .*label 'pos': a classifier needs at least two labels"):
        run_stage("data", recipe(tmp_path, [{"path": str(path)}]))


def test_single_class_after_the_allow_list_is_an_error(tmp_path: Path) -> None:
    data = [{"text": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(20))]
    path = jsonl(tmp_path / "d.jsonl", data)
    r = recipe(tmp_path, [{"path": str(path)}], labels=["pos"])
    with pytest.raises(DataError, match="at least two labels"):
        run_stage("data", r)
    q = read_jsonl(RunDir(r.run_dir_path()).data / "quarantine.jsonl")  # why the other class went
    assert len(q) == 10 and all(x["step"] == "labels" for x in q)


def test_label_and_text_from_one_column_is_an_error(tmp_path: Path) -> None:
    data = [{"review": t, "y": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(20))]
    path = jsonl(tmp_path / "d.jsonl", data)
    src = {"path": str(path), "columns": {"text": "review", "label": "review"}}
    with pytest.raises(
        DataError, match=r"d\.jsonl: the label and the text are both read from column 'review'"
    ):
        run_stage("data", recipe(tmp_path, [src]))


def test_label_column_holding_free_text_is_an_error(tmp_path: Path) -> None:
    data = [
        {"review": t, "title": f"title {t}", "y": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(120))
    ]
    path = jsonl(tmp_path / "d.jsonl", data)
    src = {"path": str(path), "columns": {"text": "review", "label": "title"}}
    with pytest.raises(DataError, match=r"d\.jsonl: 120 distinct labels in 120 rows.*label <- 'title'"):
        run_stage("data", recipe(tmp_path, [src]))


def test_group_by_column_that_no_row_has_is_an_error(tmp_path: Path) -> None:
    data = [{"text": t, "label": "pos" if i % 2 else "neg", "film": "m"} for i, t in enumerate(texts(20))]
    path = jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(
        DataError, match=r"d\.jsonl: data\.split\.group_by is 'movie', .*'film', 'label', 'text'"
    ):
        run_stage("data", recipe(tmp_path, [{"path": str(path)}], split={"group_by": "movie"}))


def test_integer_labels_are_one_class_however_written(tmp_path: Path) -> None:
    ways = [1, "1", 1.0, 0, "0", 0.0]
    path = jsonl(tmp_path / "d.jsonl", [{"text": t, "label": ways[i % 6]} for i, t in enumerate(texts(30))])
    _, _, q, out = stage(tmp_path / "a", [{"path": str(path)}], **NO_EVAL)
    assert q == [] and {x["label"] for x in rows(out)} == {"0", "1"}
    csv = tmp_path / "d.csv"
    csv.write_text(
        "text,label\n" + "".join(f"{t},{['1.0', '0.0', '1', '0'][i % 4]}\n" for i, t in enumerate(texts(20)))
    )
    _, _, q, out = stage(tmp_path / "b", [{"path": str(csv)}], **NO_EVAL)
    assert q == [] and {x["label"] for x in rows(out)} == {"0", "1"}


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1, "1"),
        ("1", "1"),
        (1.0, "1"),
        ("1.0", "1"),
        (" 2.00 ", "2"),
        ("-3.0", "-3"),
        (np.int64(4), "4"),
        (np.float32(5.0), "5"),
        (True, "true"),
        ("1.5", "1.5"),
        ("v1.0", "v1.0"),
        ("01", "01"),
    ],
)
def test_parse_label_integer_forms(value: Any, label: str) -> None:
    r = recipe(Path("/tmp"), [{"path": "x.jsonl"}])
    assert get_task("classification").parse_label(value, r) == (label, None)


# 5. messages that mislead


def test_no_train_rows_writes_quarantine_and_names_reasons(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "d.jsonl", [{"text": t, "label": ""} for t in texts(5)])
    r = recipe(tmp_path, [{"path": str(path)}])
    with pytest.raises(
        DataError, match=r"d\.jsonl: no rows left for train \(0 kept, 5 quarantined by step: format: 5\)"
    ):
        run_stage("data", r)
    q = read_jsonl(RunDir(r.run_dir_path()).data / "quarantine.jsonl")
    assert len(q) == 5 and all("missing label" in x["reason"] for x in q)


def test_chat_file_with_classification_says_use_sft(tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path = jsonl(tmp_path / "chat.jsonl", [chat] * 3)
    with pytest.raises(DataError, match=r"chat\.jsonl:1: no column 'text'.*task: sft"):
        run_stage("data", recipe(tmp_path, [{"path": str(path)}]))
    mixed = jsonl(
        tmp_path / "mixed.jsonl",
        [{"text": t, "label": lab} for t, lab in zip(texts(2), ["a", "b"], strict=True)] + [chat],
    )
    _, _, q, _ = stage(tmp_path / "m", [{"path": str(mixed)}], **NO_EVAL)
    assert len(q) == 1 and "set task: sft" in q[0]["reason"]


# 6. warnings a careful user must know, in the report and in the stage's metrics


def test_warnings_in_report_and_stage_metrics(tmp_path: Path) -> None:
    labels = ["big"] * 27 + ["small"] * 3
    path = jsonl(
        tmp_path / "d.jsonl",
        [{"text": t, "label": lab} for t, lab in zip(texts(30), labels, strict=True)]
        + [{"text": "", "label": "big"}],
    )
    r = recipe(tmp_path, [{"path": str(path)}], split={"validation": 0.1, "test": 0.1})
    res = data_stage.run(r, RunDir(r.run_dir_path()))
    warnings = res.metrics["warnings"]
    report = json.loads((RunDir(r.run_dir_path()).data / "data_report.json").read_text())
    assert warnings == report["warnings"] and all(isinstance(w, str) for w in warnings)
    joined = "\n".join(warnings)
    assert re.search(r"^validation has only \d row\(s\)", joined, re.M)
    assert re.search(r"^test has only \d row\(s\)", joined, re.M)
    assert "imbalanced" in joined
    assert "1 row(s) removed (format: 1)" in joined


def test_split_warnings_one_label_and_unseen_label() -> None:
    def recs(*labels: str) -> list[Record]:
        return [Record(source=f"d.jsonl:{i}", raw={}, origin=0, label=lab) for i, lab in enumerate(labels)]

    splits = {"train": recs("a", "b") * 20, "validation": recs("a") * 25, "test": recs("a", "c") * 12}
    joined = "\n".join(rep.split_warnings(splits, "labelled"))
    assert "validation: every row has the label 'a'" in joined
    assert "test: label(s) ['c'] never appear in train" in joined
    assert "validation has only" not in joined  # 25 rows is not tiny


def test_group_by_missing_in_one_source_is_a_warning(tmp_path: Path) -> None:
    a = jsonl(
        tmp_path / "a.jsonl",
        [
            {"text": t, "label": "pos" if i % 2 else "neg", "film": f"m{i % 4}"}
            for i, t in enumerate(texts(20, "a"))
        ],
    )
    b = jsonl(
        tmp_path / "b.jsonl",
        [{"text": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(20, "b"))],
    )
    metrics, _, _, _ = stage(tmp_path, [{"path": str(a)}, {"path": str(b)}], split={"group_by": "film"})
    assert any(w.startswith(f"{b}: no column 'film'") for w in metrics["warnings"])
