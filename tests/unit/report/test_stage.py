"""The report stage through the executor: it needs a finished stage, writes report.html, skips when
nothing changed and renders again when any stage reran or its own section changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.unit.report.fake_run import build

from tunelab.cli.main import main
from tunelab.config.load import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.report import ReportConfig
from tunelab.report.stage import run, upstream
from tunelab.runs import MissingArtifactError, RunDir
from tunelab.stages import get_stage


def _raw(out: Path, **report) -> dict:
    raw = {
        "run": {"name": "fake", "output_dir": str(out), "seed": 7},
        "task": "classification",
        "data": {"sources": [{"path": str(out / "reviews.jsonl")}]},
        "stages": ["data", "report"],
    }
    if report:
        raw["report"] = report
    return raw


def _set_record(root: Path, stage: str, **fields) -> None:
    m = json.loads((root / "manifest.json").read_text())
    m["stages"].setdefault(stage, {}).update(fields)
    (root / "manifest.json").write_text(json.dumps(m))


def test_the_declaration():
    stage = get_stage("report")
    assert stage.outputs == ("report.html",) and stage.needs == ()
    assert stage.section is ReportConfig and {"run", "task"} <= set(stage.reads)
    assert ReportConfig().examples == 5 and ReportConfig().samples == 5 and ReportConfig().title is None
    with pytest.raises(ValueError):
        ReportConfig(colour="red")
    with pytest.raises(ValueError):
        ReportConfig(examples=-1)


def test_nothing_to_report_is_an_error_that_says_what_to_run(tmp_path):
    recipe = validate_recipe(_raw(tmp_path))
    root = tmp_path / "fake"
    first = r"no manifest.*run `tunelab run RECIPE` \(or a stage\) first"
    with pytest.raises(MissingArtifactError, match=first):
        run(recipe, RunDir(root))
    build(root, stages=("data",))
    _set_record(root, "data", status="failed")
    with pytest.raises(MissingArtifactError, match="no finished stage"):
        run(recipe, RunDir(root))
    with pytest.raises(MissingArtifactError, match="no finished stage"):
        run_stage("report", recipe)  # the executor's own records (report: running) do not count
    assert not (root / "report.html").exists()
    assert RunDir(root).stage_record("report")["status"] == "failed"


def test_upstream_is_every_other_stage_record(tmp_path):
    recipe = validate_recipe(_raw(tmp_path))
    assert upstream(recipe) == {"reported_stages": {}}
    root = build(tmp_path / "fake", stages=("data", "train"))
    _set_record(root, "report", status="done", run_id="self", fingerprint="x")
    _set_record(root, "evaluate", status="failed", started="t0")
    assert upstream(recipe) == {
        "reported_stages": {
            "data": ["fp00000000000000", "id0000000000"],
            "evaluate": ["failed", "t0"],
            "train": ["fp00000000000001", "id0000000001"],
        }
    }


def test_run_skip_and_rerun(tmp_path):
    root = build(tmp_path / "fake", stages=("data", "train"))
    recipe = validate_recipe(_raw(tmp_path))
    result = run_stage("report", recipe)
    page = (root / "report.html").read_text()
    assert not result.skipped and result.artifacts == ["report.html"]
    assert result.metrics["stages"] == "data, train" and "evaluate" in result.metrics["not_run"]
    assert "<title>Run report: fake</title>" in page and "id='training'" in page
    assert run_stage("report", recipe).skipped
    _set_record(root, "train", run_id="retrained")  # a stage reran: the page is stale
    assert not run_stage("report", recipe).skipped
    assert run_stage("report", recipe).skipped
    titled = validate_recipe(_raw(tmp_path, title="Sprint 4", examples=2))  # its own section changed
    assert not run_stage("report", titled).skipped
    assert "<title>Sprint 4</title>" in (root / "report.html").read_text()
    (root / "report.html").unlink()  # its output is gone
    assert not run_stage("report", titled).skipped


def test_the_cli_verb(tmp_path):
    root = build(tmp_path / "fake", stages=("data",))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(_raw(tmp_path)))
    assert main(["report", str(path)]) == 0
    assert (root / "report.html").is_file()
    empty = tmp_path / "empty.yaml"
    raw = _raw(tmp_path)
    raw["run"]["name"] = "nothing"
    empty.write_text(yaml.safe_dump(raw))
    assert main(["report", str(empty)]) == 1
