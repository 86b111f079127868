"""A stage registered from a module of its own runs in the pipeline like a built-in one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

from tunelab.cli.main import main

PLUGIN = "tests.plugins.echo_stage"


def _recipe(tmp_path: Path, tiny_bert: Path, **echo) -> Path:
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(120))
    raw = classification_recipe(tiny_bert, data, tmp_path / "runs", max_steps=3, eval_every=3)
    raw.update(plugins=[PLUGIN], stages=["data", "train", "evaluate", "echo"], echo=echo)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _record(tmp_path: Path, stage: str) -> dict:
    return json.loads((tmp_path / "runs/cls/manifest.json").read_text())["stages"][stage]


def _calls(tmp_path: Path) -> int:
    return len((tmp_path / "runs/cls/echo/calls.log").read_text().splitlines())


def test_a_plugin_stage_runs_after_evaluate_skips_and_reruns(tmp_path, tiny_bert, capsys):
    recipe = _recipe(tmp_path, tiny_bert, greeting="hi")
    assert main(["run", str(recipe)]) == 0
    out = json.loads((tmp_path / "runs/cls/echo/summary.json").read_text())
    assert out["greeting"] == "hi" and 0.0 <= out["accuracy"] <= 1.0
    assert _record(tmp_path, "echo")["started"] >= _record(tmp_path, "evaluate")["finished"]
    first = _record(tmp_path, "echo")["run_id"]

    assert main(["run", str(recipe)]) == 0  # nothing changed: every stage is current
    assert _calls(tmp_path) == 1 and _record(tmp_path, "echo")["run_id"] == first
    assert "echo: up to date" in capsys.readouterr().err

    assert main(["run", str(recipe), "echo.greeting=hey"]) == 0  # its own section changed
    assert _calls(tmp_path) == 2 and _record(tmp_path, "echo")["status"] == "done"
    train_id = _record(tmp_path, "train")["run_id"]

    assert main(["run", str(recipe), "echo.greeting=hey", "train.learning_rate=0.001"]) == 0  # upstream
    assert _record(tmp_path, "train")["run_id"] != train_id
    assert _calls(tmp_path) == 3

    # the verb comes from the registration (a fresh process finds the plug-in through the recipe)
    args = ["echo", str(recipe), "echo.greeting=hey", "train.learning_rate=0.001", "--force", "--shout"]
    proc = subprocess.run(
        [sys.executable, "-m", "tunelab.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[3],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "runs/cls/echo/summary.json").read_text())["greeting"] == "HEY"
    assert _calls(tmp_path) == 4


def test_a_failed_stage_is_recorded_and_not_skipped(tmp_path, tiny_bert, capsys):
    recipe = _recipe(tmp_path, tiny_bert, fail=True)
    with pytest.raises(RuntimeError, match="echo was told to fail"):  # a crash, not a user error
        main(["run", str(recipe)])
    rec = _record(tmp_path, "echo")
    assert rec["status"] == "failed" and "echo was told to fail" in rec["error"]
    assert _record(tmp_path, "evaluate")["status"] == "done"
    assert not (tmp_path / "runs/cls/echo/summary.json").exists()
    capsys.readouterr()
    assert main(["run", str(recipe), "echo.fail=false"]) == 0  # the same inputs otherwise: it runs again
    assert _record(tmp_path, "echo")["status"] == "done"


def test_unknown_stage_and_section_keys_are_listed(tmp_path, tiny_bert, capsys):
    recipe = _recipe(tmp_path, tiny_bert, greting="typo")
    assert main(["validate", str(recipe), "stages=[data, trian]"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "echo.greting" in err and "unknown key" in err
    assert "unknown stage(s) ['trian']" in err
    assert "known: audit, data, echo, evaluate, explain, export, generate, report, train" in err
