"""data_report.json figures and the self-contained HTML report."""

from __future__ import annotations

import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir


class FakeTokenizer:
    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": list(range(len(text.split()) * 2))}  # two tokens per word


def build(tmp_path: Path, **extra) -> tuple[dict, str]:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    rows = [
        {"text": " ".join(rng.sample(words, 12)), "label": "common" if i % 8 else "rare"} for i in range(160)
    ]
    rows[3]["text"] += " mail jane.doe@example.com or call 555-123-4567"
    rows[5]["text"] += " <b>bold</b> see https://evil.example/x.js"
    rows.append(dict(rows[0]))
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = validate_recipe(
        {
            "run": {"output_dir": str(tmp_path), "name": "r"},
            "data": {"sources": [{"path": str(path)}], **extra},
        }
    )
    run_dir = RunDir(r.run_dir_path())
    run_stage("data", r, tokenizer=FakeTokenizer())
    report = json.loads((run_dir.data / "data_report.json").read_text())
    return report, (run_dir.data / "data_report.html").read_text(encoding="utf-8")


def test_json_report_figures(tmp_path: Path) -> None:
    report, _ = build(tmp_path)
    assert report["pii"]["counts"] == {"email": 1, "phone": 1, "url": 1} and report["pii"]["rows"] == 2
    assert all(x["found"] != "jane.doe@example.com" for x in report["pii"]["examples"])
    assert report["html_rows"] == 1
    splits = report["splits"]
    assert sum(v["rows"] for v in splits.values()) == 160
    assert splits["train"]["labels"]["common"] > 6 * splits["train"]["labels"]["rare"]
    assert any("imbalanced" in w for w in report["warnings"])
    lengths = report["lengths"]
    assert lengths["unit"] == "words"  # no token filter loaded the tokenizer
    assert sum(lengths["train"]["counts"]) == splits["train"]["rows"]
    div = report["diversity"]["train"]
    assert 250 <= div["vocab_size"] <= 320 and 0 < div["distinct_1"] <= 1 and 0 < div["distinct_2"] <= 1
    assert report["examples"]["kept"] and report["examples"]["removed"]["exact_dedup"]
    assert [s["step"] for s in report["steps"]][:2] == ["read", "format"]
    for a, b in zip(report["steps"], report["steps"][1:], strict=False):
        assert b["in"] == a["out"] and a["out"] == a["in"] - a["removed"]


def test_token_lengths_when_asked(tmp_path: Path) -> None:
    report, _ = build(tmp_path, report={"length_unit": "tokens"})
    assert report["lengths"]["unit"] == "tokens"
    assert report["lengths"]["train"]["p50"] >= 24  # twelve words, two tokens each


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained(tmp_path: Path) -> None:
    _, page = build(tmp_path)
    parser = Tags()
    parser.feed(page)
    names = {t for t, _ in parser.tags}
    assert {"svg", "rect", "table", "style"} <= names
    assert not names & {"script", "link", "iframe", "img", "object", "embed"}
    for _, attrs in parser.tags:
        assert not {"src", "href", "srcset"} & set(attrs)
    assert not re.search(r"@import|url\(|@font-face", page)
    assert "https://evil.example" not in page  # scrubbed, and nothing is loaded from anywhere
    for heading in (
        "Steps",
        "Splits and labels",
        "Lengths",
        "Duplicates and leakage",
        "Personal data",
        "Diversity",
        "Examples of kept rows",
        "Examples of removed rows",
    ):
        assert f"<h2>{heading}" in page
    assert "imbalanced" in page and "rows read 161 = kept 160 + quarantined 1" in page
