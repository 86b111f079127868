"""Sources: file formats, folders, saved datasets, caps and weights, several sources mixed."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.helpers import REVIEW_WORDS

from tunelab.config import validate_recipe
from tunelab.data.errors import DataError
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl

TEXT_FOLDER = Path(__file__).resolve().parents[2] / "data" / "text_folder"


WORDS = REVIEW_WORDS


def rows_of(n: int, prefix: str) -> list[dict[str, Any]]:
    """Distinct rows: random word choices, so no two texts are near-duplicates."""
    rng = random.Random(prefix)
    return [
        {
            "body": f"{prefix} {' '.join(rng.sample(WORDS, 9))} {i}",
            "y": "pos" if i % 2 else "neg",
            "film": f"m{i % 5}",
        }
        for i in range(n)
    ]


def run(tmp_path: Path, sources: list[dict], task: str = "classification", **data: Any):
    r = validate_recipe(
        {
            "task": task,
            "run": {"output_dir": str(tmp_path), "name": "r"},
            "data": {"sources": sources, **data},
        }
    )
    run_dir = RunDir(r.run_dir_path())
    res = run_stage("data", r)
    out = {s: read_jsonl(run_dir.data / f"{s}.jsonl") for s in ("train", "validation", "test")}
    return res, out, run_dir


def everything(out: dict) -> list[dict]:
    return [x for v in out.values() for x in v]


COLS = {"text": "body", "label": "y"}


def test_csv_tsv_parquet_and_jsonl_mixed(tmp_path: Path) -> None:
    data = rows_of(40, "x")
    (tmp_path / "a.csv").write_text("body,y\n" + "".join(f'"{r["body"]}",{r["y"]}\n' for r in data[:10]))
    (tmp_path / "b.tsv").write_text("body\ty\n" + "".join(f"{r['body']}\t{r['y']}\n" for r in data[10:20]))
    pq.write_table(pa.Table.from_pylist(data[20:30]), tmp_path / "c.parquet")
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data[30:]))
    srcs = [{"path": str(tmp_path / f), "columns": COLS} for f in ("a.csv", "b.tsv", "c.parquet", "d.jsonl")]
    res, out, _ = run(tmp_path, srcs)
    got = everything(out)
    assert sorted(x["text"] for x in got) == sorted(r["body"] for r in data)
    sources = {x["source"].rsplit(":", 1)[0].rsplit("/", 1)[1] for x in got}
    assert sources == {"a.csv", "b.tsv", "c.parquet", "d.jsonl"}
    assert any(x["source"].endswith(":row 1") for x in got if "c.parquet" in x["source"])
    assert res.metrics["rows_read"] == 40


def test_text_folder(tmp_path: Path) -> None:
    _res, out, run_dir = run(tmp_path, [{"path": str(TEXT_FOLDER)}], split={"validation": 0, "test": 0})
    got = {x["text"]: x["label"] for x in everything(out)}
    assert got == {
        "A moving, tender film.": "pos",
        "Sharp and funny from start to end.": "pos",
        "Dull and far too long.": "neg",
    }
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    assert len(q) == 1 and q[0]["source"].endswith("neg/d.txt") and "invalid UTF-8" in q[0]["reason"]


def test_saved_datasets_folder(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    folder = tmp_path / "saved"
    DatasetDict(
        {"train": Dataset.from_list(rows_of(20, "s")), "test": Dataset.from_list(rows_of(4, "t"))}
    ).save_to_disk(str(folder))
    _, out, _ = run(
        tmp_path,
        [
            {"path": str(folder), "columns": COLS},
            {"path": str(folder), "columns": COLS, "hub_split": "test", "split": "test"},
        ],
    )
    assert len(everything(out)) == 24
    assert {x["text"].split()[0] for x in out["test"]} == {"t"}
    assert all("[train]:row" in x["source"] for x in out["train"])


def test_max_rows_cap_is_a_seeded_sample(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_of(100, "x")))
    src = [{"path": str(tmp_path / "d.jsonl"), "columns": COLS, "max_rows": 30}]
    res, out, run_dir = run(tmp_path, src)
    assert res.metrics["rows_read"] == 30 and len(everything(out)) == 30
    lines = sorted(int(x["source"].rsplit(":", 1)[1]) for x in everything(out))
    assert lines != list(range(1, 31))  # a sample, not the first rows
    report = json.loads((run_dir.data / "data_report.json").read_text())
    assert report["sources"][0]["rows_available"] == 100


def test_weights_mix_train_only(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_of(50, "a")))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_of(50, "b")))
    srcs = [
        {"path": str(tmp_path / "a.jsonl"), "columns": COLS, "weight": 2},
        {"path": str(tmp_path / "b.jsonl"), "columns": COLS, "weight": 0.5},
    ]
    res, out, run_dir = run(tmp_path, srcs)
    train = out["train"]
    a = [x for x in train if x["text"].startswith("a ")]
    b = [x for x in train if x["text"].startswith("b ")]
    a_rows = len({x["text"] for x in a})
    assert len(a) == 2 * a_rows  # every train row of a twice
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    left_out = [x for x in q if x["step"] == "mix"]
    assert all(x["row"]["body"].startswith("b ") for x in left_out)
    b_rows = len(b) + len(left_out)
    assert a_rows + b_rows == 80 and len(b) == round(b_rows / 2)  # half of b's train rows
    assert len(out["test"]) == len({x["text"] for x in out["test"]}) == 10  # evaluation splits untouched
    s = res.metrics
    assert s["rows_read"] == s["rows_kept"] + s["rows_quarantined"] and s["upsampled_copies"] == a_rows


def test_group_and_keep_columns(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_of(60, "x")))
    src = [{"path": str(tmp_path / "d.jsonl"), "columns": COLS, "keep": ["film"]}]
    _, out, _ = run(tmp_path, src, split={"group_by": "film", "validation": 0.2, "test": 0.2})
    seen: dict[str, set[str]] = {}
    for s, rows in out.items():
        for x in rows:
            assert x["group"] == x["film"]
            seen.setdefault(x["group"], set()).add(s)
    assert all(len(v) == 1 for v in seen.values())


def test_unknown_extension_and_format_override(tmp_path: Path) -> None:
    p = tmp_path / "data.txt"
    p.write_text("body,y\n" + "".join(f"{r['body'].replace(',', '')},{r['y']}\n" for r in rows_of(10, "x")))
    with pytest.raises(DataError, match=r"data\.txt: cannot tell the format.*set format"):
        run(tmp_path, [{"path": str(p), "columns": COLS}])
    _, out, _ = run(tmp_path, [{"path": str(p), "columns": COLS, "format": "csv"}])
    assert len(everything(out)) == 10


def test_system_prompt_for_sft(tmp_path: Path) -> None:
    p = tmp_path / "pairs.jsonl"
    p.write_text(
        "".join(
            json.dumps({"prompt": f"q{i} about films", "response": f"answer {i}"}) + "\n" for i in range(10)
        )
    )
    _, out, _ = run(tmp_path, [{"path": str(p)}], task="sft", system_prompt="You review films.")
    for x in everything(out):
        assert [m["role"] for m in x["messages"]] == ["system", "user", "assistant"]
        assert x["messages"][0]["content"] == "You review films."


def test_json_array_file(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text(json.dumps([*rows_of(10, "j"), ["not", "an", "object"]], indent=2))
    _, out, run_dir = run(tmp_path, [{"path": str(p), "columns": COLS}])
    assert len(everything(out)) == 10
    q = read_jsonl(run_dir.data / "quarantine.jsonl")
    assert [x["source"].rsplit(":", 1)[1] for x in q] == ["row 11"] and "not an object" in q[0]["reason"]
    p.write_text('[\n  {"body": "x", "y": "pos"},\n  {"body": oops}\n]')
    with pytest.raises(DataError, match=r"d\.json:3: not valid JSON"):
        run(tmp_path, [{"path": str(p), "columns": COLS}])


def test_hub_source_code_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline: datasets.load_dataset is replaced; the reader, mapping and errors are the real ones."""
    import datasets

    calls = []

    def fake_load(name: str, subset: str | None = None, split: str = "train"):
        calls.append((name, subset, split))
        if name == "nobody/missing":
            raise FileNotFoundError("Couldn't find a dataset script or data files")
        return datasets.Dataset.from_list(rows_of(12, "h"))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    _, out, run_dir = run(tmp_path, [{"hub": "someone/reviews", "subset": "en", "columns": COLS}])
    assert calls == [("someone/reviews", "en", "train")]
    assert len(everything(out)) == 12 and out["train"][0]["source"].startswith(
        "hub:someone/reviews[train]:row"
    )
    assert "hub:someone/reviews" in run_dir.read_manifest()["inputs"]
    with pytest.raises(DataError, match=r"hub:nobody/missing: cannot load the hub dataset.*use path:"):
        run(tmp_path, [{"hub": "nobody/missing", "columns": COLS}])


def test_stage_loads_the_model_tokenizer_only_for_token_limits(tmp_path: Path, monkeypatch) -> None:
    import tunelab.models.resolve as resolve

    loaded = []

    class Tok:
        def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
            return {"input_ids": text.split()}

    monkeypatch.setattr(resolve, "load_tokenizer", lambda cfg: loaded.append(cfg.name) or Tok())
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows_of(30, "x")))
    src = [{"path": str(tmp_path / "d.jsonl"), "columns": COLS}]
    run(tmp_path, src)
    assert loaded == ["minilm"]  # once, for the report's count of texts longer than model.max_length
    res, _, _ = run(tmp_path, src, clean={"length": {"max_tokens": 11}})
    assert loaded == ["minilm"] * 2 and res.metrics["rows_kept"] == 30  # one load shared by filter and count
    with pytest.raises(DataError, match="no rows left for train"):
        run(tmp_path, src, clean={"length": {"max_tokens": 10}})
