"""The bundled Rotten Tomatoes data: synopsis rows excluded, exact and near duplicates removed and
reported, no near-duplicate pair across splits (checked with an independent index), movies grouped."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from datasketch import MinHash, MinHashLSH

from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl

SPLITS = ("train", "validation", "test")


def _run(root: Path, **split: Any) -> tuple[dict[str, list[dict]], dict, list[dict]]:
    r = validate_recipe(
        {
            "run": {"output_dir": str(root), "name": "rt"},
            "data": {
                "sources": [{"bundled": "rotten_tomatoes"}],
                "labels": ["fresh", "rotten"],
                "split": split,
            },
        }
    )
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r)
    out = {s: read_jsonl(run_dir.data / f"{s}.jsonl") for s in SPLITS}
    report = json.loads((run_dir.data / "data_report.json").read_text())
    return out, report, read_jsonl(run_dir.data / "quarantine.jsonl")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory):
    return _run(tmp_path_factory.mktemp("rt"))


def grams(text: str, n: int = 5) -> set[str]:
    t = re.sub(r"\s+", " ", text.casefold()).strip()
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


def jaccard(a: str, b: str) -> float:
    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_report_shows_removed_duplicates_and_synopses(plain) -> None:
    out, report, q = plain
    steps = {x["step"]: x for x in report["steps"]}
    assert steps["exact_dedup"]["removed"] == report["duplicates"]["exact"]["removed"] > 0
    assert steps["near_dedup"]["removed"] == report["duplicates"]["near"]["removed"] > 0
    assert steps["labels"]["removed"] > 1000  # the `plot` rows
    assert all("'plot'" in x["reason"] for x in q if x["step"] == "labels")
    for ex in report["duplicates"]["near"]["examples"]:  # the examples really are near-duplicates
        assert any(jaccard(ex["text"], o["text"]) >= 0.8 for o in ex["others"])
    kept = [x for s in SPLITS for x in out[s]]
    assert {x["label"] for x in kept} == {"fresh", "rotten"}
    assert len({x["text"] for x in kept}) == len(kept)
    s = report["summary"]
    assert s["rows_read"] == 13905 == s["rows_kept"] + s["rows_quarantined"] == len(kept) + len(q)
    assert report["duplicates"]["leakage"]["pairs"] == 0


def test_no_near_duplicate_pair_straddles_splits(plain) -> None:
    """Checked directly on the split files with datasketch's own MinHashLSH and exact Jaccard."""
    out, _, _ = plain
    lsh = MinHashLSH(threshold=0.6, num_perm=64)  # generous candidates; exact Jaccard decides
    keys = [f"{s}:{k}" for s in SPLITS for k in range(len(out[s]))]
    texts = [row["text"] for s in SPLITS for row in out[s]]
    sketches = dict(
        zip(
            keys,
            MinHash.bulk([[g.encode() for g in grams(t)] for t in texts], num_perm=64, hashfunc=zlib.crc32),
            strict=True,
        )
    )
    with lsh.insertion_session() as session:
        for key, m in sketches.items():
            session.insert(key, m)
    straddling = []
    for key, m in sketches.items():
        split, k = key.split(":")
        for other in lsh.query(m):
            o_split, o_k = other.split(":")
            if o_split != split and key < other:
                j = jaccard(out[split][int(k)]["text"], out[o_split][int(o_k)]["text"])
                if j >= 0.8:
                    straddling.append((key, other, j))
    assert straddling == []


def test_group_by_movie_keeps_movies_in_one_split(tmp_path: Path) -> None:
    out, report, _ = _run(tmp_path, group_by="movie_name")
    movies = {s: {x["group"] for x in out[s]} for s in SPLITS}
    assert all(movies[s] for s in SPLITS)
    assert not movies["train"] & movies["validation"]
    assert not movies["train"] & movies["test"]
    assert not movies["validation"] & movies["test"]
    total = sum(len(out[s]) for s in SPLITS)
    assert 0.07 < len(out["test"]) / total < 0.13  # groups still give roughly the asked ratio
    assert report["splits"]["test"]["groups"] == len(movies["test"])
