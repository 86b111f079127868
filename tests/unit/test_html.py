"""tunelab.html: escaping everywhere, self-contained pages, robust inline SVG charts."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest

from tunelab import html as h

EVIL = '<script>alert("x")</script>\''


class Tags(HTMLParser):
    """Start tags and their attributes, plus any parse of element text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(fragment: str) -> list[tuple[str, dict]]:
    p = Tags()
    p.feed(fragment)
    return p.tags


def assert_escaped(fragment: str) -> None:
    assert "<script" not in fragment and "alert(&quot;x&quot;)" in fragment
    assert '"x"' not in fragment and "'<" not in fragment
    assert "script" not in {t for t, _ in tags(fragment)}


def test_escape() -> None:
    assert h.escape(EVIL) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;"
    assert h.escape(3) == "3" and h.escape(None) == "None"


@pytest.mark.parametrize(
    "fragment",
    [
        h.table([EVIL], [[EVIL]], caption=EVIL),
        h.table(["n"], [[EVIL]], numeric={0}),
        h.cards([(EVIL, EVIL)]),
        h.notice(EVIL),
        h.notice(EVIL, "ok"),
        h.paragraph(EVIL),
        h.section(EVIL, "", id=EVIL),
        h.bar_chart({EVIL: 3}, title=EVIL),
        h.bar_chart({}, title=EVIL),
        h.grouped_bar_chart({EVIL: {EVIL: 1}}, title=EVIL),
        h.histogram([1, 2], [0, 1, 2], title=EVIL, x_labels=(EVIL, EVIL)),
        h.histogram([], [], title=EVIL),
        h.line_chart({EVIL: [(0, 1), (1, 2)]}, title=EVIL, x_label=EVIL, y_label=EVIL),
        h.line_chart({}, title=EVIL),
        h.page(EVIL, "", subtitle=EVIL, nav=[(EVIL, EVIL)]),
    ],
)
def test_every_helper_escapes_text(fragment: str) -> None:
    assert_escaped(fragment)


def test_page_is_self_contained() -> None:
    body = h.section(
        "Charts",
        h.row(
            h.bar_chart({"a": 1, "b": 2}, title="bars"),
            h.histogram([1, 3, 2], [0, 1, 2, 3], title="hist"),
            h.line_chart({"train": [(0, 2.0), (1, 1.5)], "validation": [(1, 1.7)]}, title="loss"),
            h.grouped_bar_chart({"train": {"a": 2}, "test": {"a": 1, "b": 3}}, title="labels"),
        ),
        id="charts",
    ) + h.table(["x"], [["https://example.com/a.js"]])
    page = h.page("Report", body, subtitle="sub", nav=[("charts", "Charts")])
    assert page.startswith("<!DOCTYPE html>") and "<meta charset='utf-8'>" in page
    assert "<title>Report</title>" in page and "<style>" in page and page.rstrip().endswith("</html>")
    names = {t for t, _ in tags(page)}
    assert {"svg", "rect", "polyline", "table", "style", "nav", "section"} <= names
    assert not names & {"script", "link", "iframe", "img", "object", "embed"}
    assert not re.search(r"<script|<link|@import|url\(|@font-face", page)
    page_without_cell = page.replace("https://example.com/a.js", "")
    assert "http://" not in page_without_cell and "https://" not in page_without_cell
    for _, attrs in tags(page):
        assert "src" not in attrs and "srcset" not in attrs
        assert attrs.get("href", "#").startswith("#")  # in-page links only


def test_page_without_nav_has_no_links() -> None:
    page = h.page("T", h.section("S", "x", id="s"))
    assert "<nav" not in page and "href" not in page and "<h2>S</h2>" in page and "id='s'" in page


def test_table_numeric_columns_are_right_aligned() -> None:
    out = h.table(["name", "count"], [["a", 1], ["b", 22]], numeric={1})
    cells = [(t, a.get("class")) for t, a in tags(out) if t in ("td", "th")]
    assert cells == [("th", None), ("th", "n"), ("td", None), ("td", "n"), ("td", None), ("td", "n")]
    assert "td.n" in h.CSS and "text-align:right" in h.CSS.split("td.n", 1)[1].split("}")[0]
    assert "class='n'" not in h.table(["a"], [[1]])


def test_notice_kinds_and_cards() -> None:
    assert h.notice("fine", "ok") == "<div class='ok'>fine</div>"
    with pytest.raises(ValueError):
        h.notice("x", "error")
    out = h.cards([(128, "train"), (3, "test")])
    assert out.count("class='card'") == 2 and "<b>128</b>train" in out


def test_section_levels() -> None:
    assert h.section("Steps", "<p>x</p>").startswith("<section><h2>Steps</h2>")
    assert "<h3>step</h3>" in h.section("step", "", level=3)


def test_bar_chart_widths() -> None:
    out = h.bar_chart({"a": 10, "b": 5, "c": 0, "d": math.nan, "e": -3})
    widths = [float(a["width"]) for t, a in tags(out) if t == "rect"]
    assert widths[0] == pytest.approx(190) and widths[1] == pytest.approx(95)
    assert widths[2:] == [0, 0, 0]
    assert "no data" in h.bar_chart({})
    assert len([t for t, _ in tags(h.bar_chart({"a": 0}))]) > 1  # all zero still draws


def test_histogram_bars_and_labels() -> None:
    out = h.histogram([0, 4, 2], [0, 1, 2, 3], title="len", x_labels=("0", "3+"))
    heights = [float(a["height"]) for t, a in tags(out) if t == "rect"]
    assert heights == [0, 110, 55] and ">3+</text>" in out and ">4</text>" in out
    assert "len: no rows" in h.histogram([0, 0], [0, 1, 2], title="len", empty="no rows")


def polylines(out: str) -> list[list[tuple[float, float]]]:
    lines = [a["points"] for t, a in tags(out) if t == "polyline"]
    return [[tuple(map(float, p.split(","))) for p in pts.split()] for pts in lines]


def test_line_chart_one_polyline_per_series_and_legend() -> None:
    out = h.line_chart(
        {"train": [(0, 3.0), (10, 2.0), (20, 1.2)], "validation": [(10, 2.4), (20, 1.9)]},
        title="loss",
        x_label="step",
        y_label="loss",
    )
    lines = polylines(out)
    assert [len(p) for p in lines] == [3, 2]
    assert ">train</text>" in out and ">validation</text>" in out and ">step</text>" in out
    texts = re.findall(r">([-0-9.e+]+)</text>", out)
    assert "0" in texts and "20" in texts  # x ticks at both ends
    for pts in lines:
        assert all(math.isfinite(x) and math.isfinite(y) for x, y in pts)
    assert lines[0][0][0] < lines[0][-1][0] and lines[0][0][1] < lines[0][-1][1]  # y grows downwards


def test_line_chart_empty_input() -> None:
    assert "no data" in h.line_chart({}) and "<svg" not in h.line_chart({})
    assert "<svg" not in h.line_chart({"train": []}, title="t")
    assert "<svg" not in h.line_chart({"train": [(0, math.nan), (math.inf, 1)]})


def test_line_chart_single_point_and_constant_y() -> None:
    one = h.line_chart({"train": [(5, 0.7)]})
    assert len(polylines(one)) == 1 and "<circle" in one and "nan" not in one
    flat = h.line_chart({"a": [(0, 1.0), (1, 1.0), (2, 1.0)]})
    ys = {y for _, y in polylines(flat)[0]}
    assert len(ys) == 1 and "nan" not in flat and "inf" not in flat


def test_line_chart_skips_nan_and_bad_points() -> None:
    out = h.line_chart(
        {"a": [(0, 1.0), (1, math.nan), (2, 0.5), (None, 1), (3,), (4, float("inf"))], "b": [(0, 2.0)]}
    )
    lines = polylines(out)
    assert [len(p) for p in lines] == [2, 1] and "nan" not in out
    empty_series = h.line_chart({"a": [(0, 1), (1, 2)], "gone": [(0, math.nan)]})
    assert len(polylines(empty_series)) == 1 and ">gone</text>" in empty_series  # still in the legend


def test_line_chart_ticks_are_round() -> None:
    out = h.line_chart({"a": [(0, 0.31), (1000, 0.97)]})
    texts = re.findall(r"text-anchor='(?:end|middle)'>([^<]+)</text>", out)
    assert {"0", "250", "500", "750", "1000"} <= set(texts) and {"0.2", "0.6", "1"} <= set(texts)
