"""report.html from hand-written run directories: sections present or replaced by a "did not run"
line, everything from the run escaped, and a missing or malformed file costing only its own section."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from tests.unit.report.fake_run import ALL, EVIL, build, record

from tunelab.report.page import SECTIONS, render

TITLES = {s.stage or s.id: s.title for s in SECTIONS}


class Doc(HTMLParser):
    """Start tags, the text of h2 headings and the ids of sections."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.h2: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_h2 = self._in_h2 or tag == "h2"

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)


def parse(page: str) -> Doc:
    doc = Doc()
    doc.feed(page)
    return doc


def section_html(page: str, sid: str) -> str:
    m = re.search(
        rf"<section id='{sid}'>(.*?)</section>(?=<section id=|<div class='(?:info|warn) notrun'|</body>)",
        page,
        re.S,
    )
    assert m, f"no section {sid}"
    return m.group(1)


def test_a_full_run_has_every_section_and_a_nav(tmp_path):
    page, missing = render(build(tmp_path / "run"))
    doc = parse(page)
    assert doc.h2 == [s.title for s in SECTIONS]
    assert missing == []
    links = [a["href"] for t, a in doc.tags if t == "a" and a.get("href", "").startswith("#")]
    assert links == [f"#{s.id}" for s in SECTIONS]
    assert "notrun'" not in page


def test_the_page_is_self_contained(tmp_path):
    page, _ = render(build(tmp_path / "run"))
    tags = parse(page).tags
    assert not [t for t, _ in tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    urls = [v for _, a in tags for k, v in a.items() if k in ("href", "src") and v]
    assert all(not re.match(r"^[a-z]+:", u) for u in urls), urls  # relative links and anchors only
    assert "<style>" in page and "<svg" in page and "http://" not in page and "https://" not in page


def test_what_each_section_shows(tmp_path):
    page, _ = render(build(tmp_path / "run"))
    assert "0.8333" in section_html(page, "overview") and "test accuracy" in page
    data = section_html(page, "data")
    assert (
        "exact_dedup" in data and "duplicate of &lt;row&gt; (6)" in data and "data/data_report.html" in data
    )
    training = section_html(page, "training")
    assert training.count("<svg") == 3 and "best validation accuracy (step 24)" in training
    ev = section_html(page, "evaluation")
    assert "[0.7, 0.95]" in ev and "table class='cm'" in ev and "reliability" in ev
    assert "Base vs fine-tuned" in ev and "0.99" in ev
    ex = section_html(page, "explanation")
    assert ex.count("class='ex'") == 5  # report.examples defaults to 5 of the 8
    assert "words shaded by occlusion" in ex and "class='wp6'" in ex and "misclassified" in ex
    assert "explain/index.html" in ex and "92%" in ex
    gen = section_html(page, "generation")
    assert gen.count("prompt ") >= 5 and "Decoding sweep" in gen and "chosen · Pareto" in gen
    exp = section_html(page, "export")
    assert "2.9 KiB" in exp and "1 listed file(s) are not in export/ any more" in exp and "8.4e-06" in exp
    fair = section_html(page, "fairness")
    assert "fairness gates FAILED" in fair and "flip rate" in fair and "demographic parity difference" in fair
    assert (
        "<h4>Data card: fake</h4>" in fair and "<b>classification</b>" in fair and "<code>code</code>" in fair
    )
    assert "<pre class='fm'>base_model: minilm" in fair
    man = section_html(page, "manifest")
    assert "abc123" in man and "fp00000000000001" in man and "not installed" in man


def test_gallery_sizes_follow_the_config(tmp_path):
    page, _ = render(build(tmp_path / "run"), examples=2, samples=1, title="My title")
    assert section_html(page, "explanation").count("class='ex'") == 2
    assert section_html(page, "generation").count("prompt 0") == 1 and "prompt 1" not in page
    assert "<title>My title</title>" in page


def test_everything_from_the_run_is_escaped(tmp_path):
    root = build(tmp_path / "run", text=EVIL)
    m = json.loads((root / "manifest.json").read_text())
    m["stages"]["generate"] = {"status": "failed", "error": EVIL}
    (root / "manifest.json").write_text(json.dumps(m))
    page, _ = render(root)
    assert "<script" not in page and "alert('x')" not in page
    assert page.count("&lt;script&gt;") >= 12  # data, eval, explain, generate, audit, cards...
    assert not [t for t, _ in parse(page).tags if t == "script"]


def test_stages_that_did_not_run_get_a_line_with_the_command(tmp_path):
    page, missing = render(build(tmp_path / "run", stages=("data", "train")))
    assert missing == ["evaluate", "explain", "generate", "export", "audit"]
    assert parse(page).h2 == ["Overview", "Data", "Training", "Manifest"]
    for stage in missing:
        line = re.search(rf"<div class='info notrun' data-stage='{stage}'>(.*?)</div>", page).group(1)
        assert f"<b>{TITLES[stage]}</b>: the {stage} stage did not run" in line
        assert f"<code>tunelab {stage} RECIPE</code>" in line
    assert "nav" in page and "href='#evaluation'" not in page


def test_a_failed_stage_says_so_with_its_error(tmp_path):
    root = build(tmp_path / "run", stages=("data", "train"))
    m = json.loads((root / "manifest.json").read_text())
    m["stages"]["evaluate"] = {"status": "failed", "started": "x", "error": "RuntimeError: out of memory"}
    m["stages"]["explain"] = {"status": "running", "started": "x"}
    (root / "manifest.json").write_text(json.dumps(m))
    page, _ = render(root)
    assert "the evaluate stage failed: RuntimeError: out of memory" in page
    assert "<div class='warn notrun' data-stage='evaluate'>" in page
    assert "the explain stage is marked running (or was interrupted)" in page


def test_outputs_under_a_failed_rerun_are_shown_with_a_warning(tmp_path):
    root = build(tmp_path / "run")
    m = json.loads((root / "manifest.json").read_text())
    m["stages"]["evaluate"] = {"status": "failed", "error": "ValueError: boom"}
    (root / "manifest.json").write_text(json.dumps(m))
    page, _ = render(root)
    ev = section_html(page, "evaluation")
    assert "the latest evaluate run failed (ValueError: boom)" in ev and "[0.7, 0.95]" in ev


@pytest.mark.parametrize(
    ("rel", "content", "section", "message"),
    [
        ("metrics/eval.json", "{not json", "evaluation", "metrics/eval.json is not valid JSON"),
        ("metrics/eval.json", "[1, 2]", "evaluation", "metrics/eval.json does not hold a JSON object"),
        ("data/data_report.json", '{"summary": [1], "splits": "x"}', "data", "No row was quarantined"),
        (
            "explain/examples.jsonl",
            '{"index": 0}\nnot json\n',
            "explanation",
            "explain/examples.jsonl line 2",
        ),
        (
            "metrics/train_log.jsonl",
            "[]\n",
            "training",
            "metrics/train_log.jsonl line 1 is not a JSON object",
        ),
        ("generate/sweep.json", '{"rows": {"a": 1}}', "generation", "Decoding sweep"),
        ("audit/fairness.json", '{"counterfactual": [1], "gates": {}, "groups": 3}', "fairness", "Data card"),
        ("export/manifest.json", '{"files": {"a": 1}, "verify": {"gguf": "x"}}', "export", "1 files"),
        ("metrics/comparison.json", b"\xff\xfe{", "evaluation", "metrics/comparison.json could not be read"),
        ("explain/global.json", "null", "explanation", "Global importance was not computed"),
    ],
)
def test_a_malformed_file_costs_only_its_own_section(tmp_path, rel, content, section, message):
    root = build(tmp_path / "run")
    if isinstance(content, bytes):
        (root / rel).write_bytes(content)
    else:
        (root / rel).write_text(content, encoding="utf-8")
    page, _ = render(root)
    assert parse(page).h2 == [s.title for s in SECTIONS]  # every other section still there
    assert message in section_html(page, section)


def test_an_unexpected_shape_names_the_file(tmp_path):
    root = build(tmp_path / "run")
    ev = json.loads((root / "metrics/eval.json").read_text())
    ev["per_class"] = {"neg": 5}
    ev["confusion_matrix"] = [[1, 2], [3]]
    (root / "metrics/eval.json").write_text(json.dumps(ev))
    (root / "metrics/train_summary.json").write_text(json.dumps({"parameters": 5, "best_metric": [1]}))
    page, _ = render(root)
    assert "confusion matrix not shown" in section_html(page, "evaluation")
    assert "Training" in parse(page).h2


def test_no_manifest_and_no_recipe(tmp_path):
    root = build(tmp_path / "run", stages=("data",))
    (root / "manifest.json").unlink()
    (root / "recipe.yaml").write_text(":\n  - [unclosed", encoding="utf-8")
    page, _ = render(root)
    ov, man = section_html(page, "overview"), section_html(page, "manifest")
    assert "manifest.json is missing" in ov and "recipe.yaml could not be read" in ov
    assert "manifest.json is missing" in man
    assert "Data" in parse(page).h2


def test_the_stage_table_lists_plugin_stages(tmp_path):
    root = build(tmp_path / "run", stages=("data",))
    m = json.loads((root / "manifest.json").read_text())
    m["stages"]["echo"] = record(3, {"greeting": "hello"})
    m["stages"]["report"] = {"status": "running"}
    (root / "manifest.json").write_text(json.dumps(m))
    ov = section_html(render(root)[0], "overview")
    assert "<td>echo</td>" in ov and "greeting hello" in ov and "<td>report</td>" not in ov


def test_all_stage_names_are_known_sections():
    assert {s.stage for s in SECTIONS if s.stage} == set(ALL)
