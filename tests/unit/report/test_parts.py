"""The report's own pieces: the tiny markdown, the reliability bins, the confusion matrix, shaded words."""

from __future__ import annotations

import pytest
from tests.unit.report.fake_run import EVIL

from tunelab.report import charts, markdown
from tunelab.report.common import figure, size
from tunelab.report.sections_model import calibration_points


def test_markdown_blocks():
    md = (
        "---\nlicense: mit\n---\n\n# Title\n\nA paragraph\nover two lines.\n\n## Sub\n\n"
        "- one\n- **two**\n\n1. first\n2. second\n\n| a | b |\n|---|:-:|\n| 1 | `x` |\n| 2 |\n\n"
        "```\ncode <b>\n```\n"
    )
    out = markdown.to_html(md)
    assert out.startswith("<pre class='fm'>license: mit</pre><h4>Title</h4>")
    assert "<p>A paragraph over two lines.</p><h5>Sub</h5>" in out
    assert "<ul><li>one</li><li><b>two</b></li></ul><ol><li>first</li><li>second</li></ol>" in out
    assert "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td>" in out
    assert "<tr><td>2</td><td></td></tr></table>" in out  # a short row is padded
    assert "<pre>code &lt;b&gt;</pre>" in out


def test_markdown_escapes_and_never_links():
    out = markdown.to_html(f"# {EVIL}\n\n{EVIL} [site](https://example.com) `{EVIL}` *em*")
    assert "<script" not in out and "&lt;script&gt;" in out
    assert "<a" not in out and "site (https://example.com)" in out
    assert "<i>em</i>" in out and "<code>&lt;script&gt;" in out


@pytest.mark.parametrize("base", [1, 3, 5])
def test_markdown_heading_levels_are_capped(base):
    out = markdown.to_html("###### deep", base_level=base)
    assert out == "<h6>deep</h6>"


def test_reliability_bins_and_ece():
    points = [(0.95, 1.0), (0.95, 1.0), (0.95, 0.0), (0.55, 1.0), (0.55, 0.0), (1.0, 1.0)]
    points.append((float("nan"), 1.0))
    bins = charts.reliability_bins(points, n_bins=10)
    assert [(b["low"], b["count"]) for b in bins] == [(0.5, 2), (0.9, 4)]  # 1.0 falls in the last bin
    top = bins[1]
    assert top["accuracy"] == pytest.approx(0.75) and top["confidence"] == pytest.approx((0.95 * 3 + 1) / 4)
    expected = (2 * abs(0.5 - 0.55) + 4 * abs(0.75 - top["confidence"])) / 6
    assert charts.ece(bins) == pytest.approx(expected)
    svg = charts.reliability(bins, title="t")
    assert svg.count("<rect") == 3 and svg.count("<circle") == 2  # the frame and a bar per bin
    assert "no predictions" in charts.reliability([], title="t")


def test_calibration_points_of_each_task():
    cls = [
        {"label": "a", "predicted": "a", "probability": 0.9},
        {"label": "b", "predicted": "a", "probability": 0.6},
    ]
    assert calibration_points(cls) == ("top-label confidence", [(0.9, 1.0), (0.6, 0.0)])
    multi = [{"labels": ["x"], "predicted": ["x"], "probabilities": {"x": 0.8, "y": 0.3}}]
    assert calibration_points(multi) == ("per-label probability", [(0.8, 1.0), (0.3, 0.0)])
    assert calibration_points([{"target": 1.0, "prediction": 0.5}])[1] == []  # regression: nothing to bin


def test_confusion_matrix_shading_and_bad_input():
    out = charts.confusion([[3, 1], [0, 4]], ["neg", EVIL])
    assert "<script" not in out and out.count("<td style=") == 4
    assert "rgba(72,120,168,0.56)" in out and "rgba(192,72,72,0.19)" in out  # 3/4 and 1/4 of 0.75
    assert "rgba(192,72,72,0.00)" in out
    assert "not shown" in charts.confusion([[1, 2], [3]], ["a", "b"])
    assert "not shown" in charts.confusion("x", [])
    assert "too many labels" in charts.confusion([[0] * 30 for _ in range(30)], [])


def test_shaded_words():
    out = charts.shaded_words(["good", "bad", EVIL, "none"], [0.5, -0.25, 0.0, "x"])
    assert "class='wp6'" in out and "class='wn3'" in out
    assert "<script" not in out and "title='no score'" in out
    assert charts.shaded_words(["a"], []).count("<span") == 2


def test_formatting_helpers():
    assert figure({"value": 0.83333, "low": 0.7, "high": 0.95}) == "0.8333 [0.7, 0.95]"
    assert figure(0.5) == "0.5" and figure(None) == "-"
    assert size(3000) == "2.9 KiB" and size(10) == "10 B"
    assert size(5 * 1024**3) == "5.0 GiB" and size("x") == "-"
