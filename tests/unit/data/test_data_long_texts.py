"""The data report counts texts longer than model.max_length tokens (the model's tokenizer, special
tokens included), shows them on the page, and the CLI warns when too many train texts are cut."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import yaml
from tests.helpers import FILLER, sentiment_rows, write_jsonl

from tunelab.cli.main import main
from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl

MAX_LENGTH = 16


def rows(n_long: int, n_short: int = 60) -> list[dict]:
    rng = random.Random(0)
    out = sentiment_rows(n_short)
    for i in range(n_long):
        words = rng.choices(FILLER, k=rng.randint(20, 40))
        out.append({"text": " ".join(words) + f" {i}", "label": "pos" if i % 2 else "neg"})
    return out


def raw_recipe(tmp_path: Path, model: Path, data: Path, **model_keys) -> dict:
    return {
        "run": {"name": "lt", "output_dir": str(tmp_path / "runs"), "seed": 3},
        "task": "classification",
        "data": {
            "sources": [{"path": str(data)}],
            "dedup": {"near": {"enabled": False}, "leakage": "off"},  # random filler looks alike
        },
        "model": {"name": str(model), "max_length": MAX_LENGTH, **model_keys},
    }


def report_of(recipe) -> tuple[dict, str]:
    data = RunDir(recipe.run_dir_path()).data
    return json.loads((data / "data_report.json").read_text()), (data / "data_report.html").read_text()


def test_the_report_counts_long_texts_per_split_with_the_model_tokenizer(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    recipe = validate_recipe(raw_recipe(tmp_path, tiny_bert, write_jsonl(tmp_path / "d.jsonl", rows(60))))
    result = run_stage("data", recipe)
    report, page = report_of(recipe)
    block = report["long_texts"]
    assert block["max_length"] == MAX_LENGTH and block["long_text"] == "truncate" and "skipped" not in block
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    run = RunDir(recipe.run_dir_path())
    for split in ("train", "validation", "test"):
        texts = [r["text"] for r in read_jsonl(run.data / f"{split}.jsonl")]
        n = np.array([len(tok(t)["input_ids"]) for t in texts])  # with [CLS] and [SEP], as encode has them
        over = n > MAX_LENGTH
        got = block["splits"][split]
        assert got["texts"] == len(texts) and got["over"] == int(over.sum()) > 0
        assert got["share"] == round(float(over.mean()), 4)
        tokens = {"p50": int(np.median(n)), "p95": int(np.percentile(n, 95)), "max": int(n.max())}
        assert got["tokens"] == tokens
        assert got["mean_cut"] == round(float((n[over] - MAX_LENGTH).mean()), 1)
    share = block["splits"]["train"]["share"]
    assert report["summary"]["train_over_max_length"] == share > 0.05
    (warning,) = [w for w in report["warnings"] if "longer than model.max_length" in w]
    assert warning == report["warnings"][0], "the cut texts come first"
    assert f"{share:.0%} of train texts" in warning and "model.long_text: head_tail" in warning
    assert "chunk" in warning and result.metrics["warnings"] == report["warnings"]
    assert "Texts longer than model.max_length (16 tokens)" in page and f"{share:.1%}" in page

    # another max_length is another count: the data stage is not current any more
    again = validate_recipe(raw_recipe(tmp_path, tiny_bert, tmp_path / "d.jsonl", max_length=64))
    assert not run_stage("data", again).skipped
    assert report_of(again)[0]["long_texts"]["splits"]["train"]["share"] < share


def test_under_the_threshold_no_warning_and_chunk_counts_its_windows(tiny_bert, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", rows(60))
    raw = raw_recipe(tmp_path, tiny_bert, data, long_text="chunk", chunk={"stride": 2, "max_chunks": 2})
    raw["data"]["long_text_warning"] = 1.0
    recipe = validate_recipe(raw)
    run_stage("data", recipe)
    report, page = report_of(recipe)
    train = report["long_texts"]["splits"]["train"]
    assert train["windows"] > train["texts"] and train["dropped_windows"] > 0
    assert not any("longer than model.max_length" in w for w in report["warnings"]), "chunk reads them all"
    (capped,) = [w for w in report["warnings"] if "model.chunk.max_chunks (2)" in w]
    assert f"{train['capped_texts']:,} train texts" in capped
    assert f"{train['dropped_windows']:,} windows past it are dropped" in capped
    assert "windows dropped" in page

    raw = raw_recipe(tmp_path, tiny_bert, data)
    raw["data"]["long_text_warning"] = 1.0
    raw["run"]["name"] = "quiet"
    recipe = validate_recipe(raw)
    run_stage("data", recipe)
    report, _ = report_of(recipe)
    assert report["long_texts"]["splits"]["train"]["share"] > 0
    assert not any("max_length" in w for w in report["warnings"])


def test_a_tokenizer_that_cannot_count_is_skipped_and_said_so(tiny_bert, tmp_path):
    class Words:  # counts one text at a time only (like the token-filter tests' fake)
        def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
            return {"input_ids": text.split()}

    recipe = validate_recipe(raw_recipe(tmp_path, tiny_bert, write_jsonl(tmp_path / "d.jsonl", rows(10))))
    run_stage("data", recipe, tokenizer=Words())
    report, page = report_of(recipe)
    assert "could not count tokens" in report["long_texts"]["skipped"]
    assert report["summary"]["train_over_max_length"] is None
    assert "Not counted: the tokenizer of model.name" in page


def test_the_cli_warns_and_shows_the_share(tiny_bert, tmp_path, capsys):
    recipe = validate_recipe(raw_recipe(tmp_path, tiny_bert, write_jsonl(tmp_path / "d.jsonl", rows(60))))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw_recipe(tmp_path, tiny_bert, tmp_path / "d.jsonl")))
    assert main(["data", str(path)]) == 0
    err = capsys.readouterr().err
    share = report_of(recipe)[0]["long_texts"]["splits"]["train"]["share"]
    assert re.search(rf"over max_length\s+{share:.1%} of train texts", err)
    warnings = " ".join(err.split("warnings", 1)[1].split())
    assert f"{share:.0%} of train texts" in warnings and "model.long_text: head_tail" in warnings
    assert "or chunk" in warnings
