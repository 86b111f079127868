"""`tunelab run` ending with the report stage, on a tiny BERT classifier trained in the test: the page
has a section for every stage that ran and a line for each that did not, opens in headless chromium
without a console error or a single network request, and looks like something (a screenshot)."""

from __future__ import annotations

import json
import re
import struct

import pytest
from tests.browser import open_page, require_browser
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline, run_stage

RAN = ["Overview", "Data", "Training", "Evaluation", "Explanation", "Manifest"]
NOT_RAN = {"generate": "Generation", "export": "Export", "audit": "Fairness"}


@pytest.fixture(scope="module")
def reported(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = write_jsonl(tmp / "reviews.jsonl", sentiment_rows(240))
    raw = classification_recipe(tiny_bert, data, tmp / "runs", epochs=4)
    raw["stages"] = ["data", "train", "evaluate", "explain", "report"]
    raw["explain"] = {
        "n": 4,
        "methods": ["occlusion", "gradient_x_input"],
        "select": ["confident", "misclassified"],
        "global_importance": {"n": 40},
        "rules": {"max_train": 60, "max_heldout": 20},
        "layers": {"enabled": False},
    }
    raw["report"] = {"examples": 3}
    recipe = validate_recipe(raw)
    results = run_pipeline(recipe)
    return recipe, recipe.run_dir_path(), results


def test_the_run_ends_with_the_report(reported):
    recipe, root, results = reported
    assert [r.stage for r in results] == ["data", "train", "evaluate", "explain", "report"]
    page = (root / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"<h2>([^<]+)</h2>", page) == RAN
    for stage, title in NOT_RAN.items():
        assert f"<b>{title}</b>: the {stage} stage did not run" in page
        assert f"<code>tunelab {stage} RECIPE</code>" in page
    assert page.count("class='ex'") == 3 and "table class='cm'" in page and "reliability (" in page
    assert "reliability (calibrated, T = " in page, "temperature scaling: the diagrams before and after"
    accuracy = json.loads((root / "metrics/eval.json").read_text())["accuracy"]["value"]
    assert f"{accuracy:.4g}" in page
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["stages"]["report"]["status"] == "done"
    assert set(manifest["inputs"]["reported_stages"]) == {"data", "train", "evaluate", "explain"}
    assert run_stage("report", recipe).skipped  # nothing changed: not rendered again
    assert not run_stage("report", recipe, force=True).skipped


@pytest.mark.browser
def test_the_page_in_headless_chromium(reported, tmp_path):
    require_browser()
    _, root, _ = reported
    shot = tmp_path / "report.png"
    with open_page(root / "report.html") as visit:
        page = visit.page
        assert visit.title.startswith("Run report: cls")
        for title in RAN:
            assert page.get_by_role("heading", name=title, level=2, exact=True).is_visible(), title
        assert visit.visible_headings("h2") == RAN
        nav = [a.inner_text() for a in page.query_selector_all("nav a")]
        assert nav == RAN
        assert page.locator(".notrun").count() == len(NOT_RAN)
        assert page.locator("svg").count() >= 5  # curves, reliability, label balance, words, timings
        page.screenshot(path=str(shot), full_page=True)
        assert not visit.console_errors, visit.console_errors
        assert not visit.requests, visit.requests
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1000 and height > 2000  # a whole page, not a blank viewport
