"""``tunelab validate`` runs the preflight checks: every knowable mistake at once, with key paths."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.helpers import qa_rows, write_jsonl

from tunelab.cli.main import main
from tunelab.config import load_recipe
from tunelab.preflight import check

ROOT = Path(__file__).parents[3]


def _write(tmp_path: Path, raw: dict) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def test_six_mistakes_are_reported_together_with_key_paths_and_lines(tmp_path, tiny_bert, capsys):
    qa = write_jsonl(tmp_path / "qa.jsonl", qa_rows(20))
    raw = {
        "task": "sft",
        "data": {
            "sources": [{"path": str(tmp_path / "missing.jsonl")}, {"path": str(qa)}],
            "labels": ["spam"],  # sft has no label classes: a listed label can never occur
            "clean": {"steps": ["unicode", "htm", "whitespace"]},
        },
        "model": {"name": str(tiny_bert)},  # an encoder-only BERT
        "train": {"metric_for_best": "accuracy"},
        "search": {"candidates": ["minilmm"]},  # a mistyped bundled alias
    }
    assert main(["validate", _write(tmp_path, raw)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    flat = " ".join(err.split())
    assert "6 problem(s)" in flat
    for needle in (
        "data.sources.0.path (line 4): ",
        "missing.jsonl not found",
        "data.labels (line 6): task sft has no label classes",
        "data.clean.steps.1 (line 11): unknown cleaning step 'htm' (did you mean 'html'?)",
        "model.name (line 14): ",
        "is an encoder-only model (bert: BertModel); task sft needs a causal LM",
        "train.metric_for_best (line 16): task sft's validation does not produce 'accuracy'",
        "search.candidates.0 (line 19): unknown model alias 'minilmm' (did you mean 'minilm'?)",
    ):
        assert needle in flat, (needle, flat)


def test_a_classification_recipe_with_several_mistakes(tmp_path, capsys):
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"text": f"t {i}", "label": "pos"} for i in range(10)])
    raw = {
        "data": {"sources": [{"path": str(rows)}], "labels": ["pos", "neutral"]},
        "model": {"name": "minilmm"},
        "train": {"metric_for_best": "perplexity"},
    }
    assert main(["validate", _write(tmp_path, raw)]) == 2
    flat = " ".join(capsys.readouterr().err.split())
    for needle in (
        "data.sources.0 (line 3): every row that data.labels keeps has label 'pos'",
        "data.labels.1 (line 6): label 'neutral' never occurs in the data",
        "model.name (line 8): unknown model alias 'minilmm'",
        "train.metric_for_best (line 10): task classification's validation does not produce 'perplexity'",
    ):
        assert needle in flat, (needle, flat)


def test_the_quickstart_recipe_validates_with_no_problems(capsys):
    recipe = ROOT / "configs" / "quickstart.yaml"
    assert check(load_recipe(recipe)) == ([], [])
    assert main(["validate", str(recipe)]) == 0
    assert "valid" in capsys.readouterr().err


def test_an_offline_hub_id_is_a_note_printed_after_valid(tmp_path, capsys):
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"text": f"t {i}", "label": "ab"[i % 2]} for i in range(10)])
    raw = {"data": {"sources": [{"path": str(rows)}]}, "model": {"name": "tunelab-tests/no-such-model"}}
    assert main(["validate", _write(tmp_path, raw)]) == 0
    flat = " ".join(capsys.readouterr().err.split())
    assert "valid" in flat
    assert flat.index("valid") < flat.index("note: model.name (line 5): hub id 'tunelab-tests/no-such-model'")
    assert "not checked: offline" in flat


def test_schema_errors_still_come_first(tmp_path, capsys):
    raw = {"data": {"sources": [{"path": str(tmp_path / "missing.jsonl")}]}, "train": {"epochz": 1}}
    assert main(["validate", _write(tmp_path, raw)]) == 2
    flat = " ".join(capsys.readouterr().err.split())
    assert "train.epochz" in flat
    assert "missing.jsonl" not in flat  # preflight runs once the schema passes
