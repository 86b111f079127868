"""The data stage contract: split files and their row schema, labels, quarantine, report, inputs, skip."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import REVIEW_WORDS

from tunelab.config import validate_recipe
from tunelab.data.errors import DataError
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, file_sha256, read_jsonl

SPLITS = ("train", "validation", "test")


def recipe(tmp_path: Path, task: str = "classification", **data: Any):
    return validate_recipe(
        {"task": task, "run": {"name": "r", "output_dir": str(tmp_path / "runs")}, "data": data}
    )


def splits(run_dir: RunDir) -> dict[str, list[dict[str, Any]]]:
    return {s: read_jsonl(run_dir.data / f"{s}.jsonl") for s in SPLITS}


def fname(source: str) -> str:
    """The file name in a "path:line" source location."""
    return Path(source.rsplit(":", 1)[0]).name


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def reviews(n: int = 60) -> list[dict[str, Any]]:
    """Distinct short reviews (random word choices, so no two are near-duplicates)."""
    words = REVIEW_WORDS
    out = []
    for i in range(n):
        rng = random.Random(i)
        out.append(
            {
                "review": f"{' '.join(rng.sample(words, 8))} film number {i}",
                "sentiment": "pos" if i % 3 else "neg",
            }
        )
    return out


def test_classification_contract(tmp_path: Path) -> None:
    rows = reviews()
    rows.append(dict(rows[0]))  # an exact duplicate
    rows.append({"review": "", "sentiment": "pos"})
    rows.append({"review": "a fine film", "sentiment": "meh"})
    path = write_jsonl(tmp_path / "reviews.jsonl", rows)
    r = recipe(
        tmp_path,
        sources=[{"path": str(path), "columns": {"text": "review", "label": "sentiment"}}],
        labels=["pos", "neg"],
        split={"validation": 0.2, "test": 0.2},
    )
    run_dir = RunDir(r.run_dir_path())
    res = run_stage("data", r)
    assert not res.skipped
    out = splits(run_dir)
    assert all(out[s] for s in SPLITS)
    for s in SPLITS:
        for row in out[s]:
            assert set(row) == {"text", "label", "source"}
            assert row["label"] in {"pos", "neg"} and row["text"]
            assert fname(row["source"]) == "reviews.jsonl"
    assert json.loads((run_dir.data / "labels.json").read_text())["labels"] == ["neg", "pos"]
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    assert {x["step"] for x in q} == {"exact_dedup", "format", "labels"}
    assert all({"step", "reason", "source", "row"} <= set(x) for x in q)
    assert any("'meh'" in x["reason"] and x["source"].endswith(":63") for x in q)
    report = json.loads((run_dir.data / "data_report.json").read_text())
    s = report["summary"]
    assert s["rows_read"] == 63 == s["rows_kept"] + s["rows_quarantined"]
    assert s["rows_kept"] == sum(len(v) for v in out.values()) == 60
    assert (run_dir.data / "data_report.html").exists()
    manifest = run_dir.read_manifest()
    assert manifest["inputs"][str(path)] == file_sha256(path)
    assert manifest["stages"]["data"]["status"] == "done"


def test_skip_force_and_rerun_on_change(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": r["review"], "label": r["sentiment"]} for r in reviews()]
    )
    r = recipe(tmp_path, sources=[{"path": str(path)}])
    run_dir = RunDir(r.run_dir_path())
    first = run_stage("data", r)
    before = (run_dir.data / "train.jsonl").read_text()
    again = run_stage("data", r)
    assert again.skipped and again.metrics["rows_read"] == first.metrics["rows_read"]
    assert not run_stage("data", r, force=True).skipped
    assert (run_dir.data / "train.jsonl").read_text() == before  # seeded: same result
    # a changed input file, a changed data section or a missing output each redo the stage
    write_jsonl(path, [{"text": r["review"] + " (edited)", "label": r["sentiment"]} for r in reviews()])
    assert not run_stage("data", r).skipped
    r2 = recipe(tmp_path, sources=[{"path": str(path)}], split={"test": 0.3})
    assert not run_stage("data", r2).skipped
    (run_dir.data / "test.jsonl").unlink()
    assert not run_stage("data", r2).skipped


def test_seed_changes_split(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"text": r["review"], "label": r["sentiment"]} for r in reviews()]
    )
    tests = []
    for seed in (1, 2):
        r = validate_recipe(
            {
                "run": {"name": f"s{seed}", "output_dir": str(tmp_path), "seed": seed},
                "data": {"sources": [{"path": str(path)}]},
            }
        )
        run_stage("data", r)
        tests.append({x["text"] for x in read_jsonl(r.run_dir_path() / "data" / "test.jsonl")})
    assert tests[0] != tests[1]


def test_sft_formats_become_messages(tmp_path: Path) -> None:
    inst = write_jsonl(
        tmp_path / "inst.jsonl",
        [
            {
                "instruction": f"Translate number {i} to words",
                "input": f"{i}",
                "output": f"the number {i} in words",
            }
            for i in range(30)
        ],
    )
    chat = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Hi {i}?"},
                    {"role": "assistant", "content": f"Hello there, person {i}."},
                ]
            }
            for i in range(20)
        ]
        + [{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}],
    )
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("q,a\n" + "".join(f"What is {i} plus {i}?,It is {2 * i}.\n" for i in range(20)))
    r = recipe(
        tmp_path,
        "sft",
        sources=[
            {"path": str(inst)},
            {"path": str(chat)},
            {"path": str(pairs), "columns": {"prompt": "q", "response": "a"}},
        ],
    )
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r)
    rows = [x for v in splits(run_dir).values() for x in v]
    assert len(rows) == 70
    for row in rows:
        assert set(row) == {"messages", "source"}
        roles = [m["role"] for m in row["messages"]]
        assert roles[-1] == "assistant" and "user" in roles
    by_src = {fname(row["source"]): row for row in rows}
    inst_row = by_src["inst.jsonl"]
    assert (
        inst_row["messages"][0]["content"].startswith("Translate number")
        and "\n\n" in inst_row["messages"][0]["content"]
    )
    assert by_src["pairs.csv"]["messages"][0]["role"] == "user"
    assert not (run_dir.data / "labels.json").exists()
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    assert len(q) == 1 and "'bot'" in q[0]["reason"] and q[0]["source"] == f"{chat}:21"


def test_bundled_chatterbot(tmp_path: Path) -> None:
    r = recipe(tmp_path, "sft", sources=[{"bundled": "chatterbot"}])
    run_dir = RunDir(r.run_dir_path())
    res = run_stage("data", r)
    rows = [x for v in splits(run_dir).values() for x in v]
    assert res.metrics["rows_read"] > 1500 and len(rows) > 1000
    assert all([m["role"] for m in x["messages"]] == ["user", "assistant"] for x in rows)
    assert all(x["source"].startswith("chatterbot_corpus/data/english/") and x["category"] for x in rows)
    assert len({x["category"] for x in rows}) >= 15
    assert res.metrics["rows_read"] == res.metrics["rows_kept"] + res.metrics["rows_quarantined"]


def test_explicit_split_files(tmp_path: Path) -> None:
    train = write_jsonl(
        tmp_path / "train.jsonl", [{"text": r["review"], "label": r["sentiment"]} for r in reviews(40)]
    )
    test = write_jsonl(
        tmp_path / "test.jsonl",
        [
            {"text": f"held-out review {i} of a film {i * 3}", "label": lab}
            for i, lab in enumerate(["pos", "neg"] * 5)
        ],
    )
    r = recipe(tmp_path, sources=[{"path": str(train)}, {"path": str(test), "split": "test"}])
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r)
    out = splits(run_dir)
    assert len(out["test"]) == 10 and all(fname(x["source"]) == "test.jsonl" for x in out["test"])
    assert out["validation"] and all(fname(x["source"]) == "train.jsonl" for x in out["validation"])

    write_jsonl(test, [{"text": "a review with an unseen label", "label": "mixed"}])
    with pytest.raises(DataError, match=r"test\.jsonl:1.*'mixed'.*never appears in train"):
        run_stage("data", r)


@pytest.mark.parametrize(
    ("name", "content", "columns", "match"),
    [
        ("missing", None, {}, r"missing\.jsonl: file not found"),
        ("empty", "", {}, r"empty\.jsonl:1: the file is empty"),
        ("bad", '{"text": "ok", "label": "a"}\n{"text": "broken", \n', {}, r"bad\.jsonl:2: not valid JSON"),
        (
            "nocol",
            '{"body": "no text column", "label": "a"}\n',
            {},
            r"nocol\.jsonl:1: no column 'text'.*columns",
        ),
        (
            "nolabel",
            '{"text": "x", "label": "a"}\n',
            {"label": "stars"},
            r"nolabel\.jsonl:1: no column 'stars'",
        ),
    ],
)
def test_bad_input_names_file_and_line(
    tmp_path: Path, name: str, content: str | None, columns: dict[str, str], match: str
) -> None:
    path = tmp_path / f"{name}.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    r = recipe(tmp_path, sources=[{"path": str(path), "columns": columns}])
    with pytest.raises(DataError, match=match) as info:
        run_stage("data", r)
    assert isinstance(info.value, ValueError)
    assert "(" in str(info.value)  # says what to do


def test_bundled_rotten_tomatoes_excludes_plot_and_groups(tmp_path: Path) -> None:
    r = recipe(
        tmp_path,
        sources=[{"bundled": "rotten_tomatoes"}],
        labels=["fresh", "rotten"],
        split={"group_by": "movie_name"},
    )
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r)
    out = splits(run_dir)
    movies = {s: {x["group"] for x in out[s]} for s in SPLITS}
    assert not (
        movies["train"] & movies["validation"]
        or movies["train"] & movies["test"]
        or movies["validation"] & movies["test"]
    )
    assert {x["label"] for v in out.values() for x in v} == {"fresh", "rotten"}
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    plot = [x for x in q if x["step"] == "labels"]
    assert len(plot) > 1000 and all("'plot'" in x["reason"] for x in plot)
    report = json.loads((run_dir.data / "data_report.json").read_text())
    assert report["duplicates"]["exact"]["removed"] > 0
    assert report["removed_by_step"]["labels"] == len(plot)
