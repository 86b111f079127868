"""Bad input through the CLI: a message naming file and line, a non-zero exit, never a traceback."""

from __future__ import annotations

import yaml

from tunelab.cli.main import main


def _recipe(tmp_path, data_path, **extra) -> str:
    raw = {
        "run": {"name": "r", "output_dir": str(tmp_path / "runs")},
        "data": {"sources": [{"path": str(data_path)}]},
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _fails_cleanly(argv, capsys, *needles: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.replace("\n", " ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_missing_file(tmp_path, capsys):
    _fails_cleanly(["data", _recipe(tmp_path, tmp_path / "nope.jsonl")], capsys, "nope.jsonl", "not found")


def test_malformed_jsonl_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "a"}\n{"text": oops}\n')
    _fails_cleanly(["data", _recipe(tmp_path, bad)], capsys, "bad.jsonl:2")


def test_missing_label_column(tmp_path, capsys):
    bad = tmp_path / "nolabel.csv"
    bad.write_text("text,score\nnice film,3\n")
    _fails_cleanly(["data", _recipe(tmp_path, bad)], capsys, "nolabel.csv", "label")


def test_train_before_data_says_which_stage_to_run(tmp_path, capsys):
    good = tmp_path / "ok.jsonl"
    good.write_text('{"text": "fine", "label": "a"}\n')
    _fails_cleanly(["train", _recipe(tmp_path, good)], capsys, "needs the 'data' stage", "tunelab data")
