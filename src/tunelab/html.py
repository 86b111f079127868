"""Shared helpers for tunelab's self-contained HTML pages (inline CSS and SVG; no scripts, links or fonts).

Every helper escapes the text it is given (titles, labels, cells) and returns an HTML fragment as a
``str``; ``body`` arguments are fragments built by these helpers and are inserted as they are.
"""

from __future__ import annotations

import html as _html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2rem}h3{font-size:1rem}.sub{color:#666;margin-top:0}
nav{font-size:.9rem;margin:.5rem 0 1rem}nav a{margin-right:.8rem;color:#246}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}caption{text-align:left;color:#555}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.4rem .7rem;margin:.3rem 0}
.ok{background:#eaf7ea;border-left:4px solid #3a3;padding:.4rem .7rem;margin:.3rem 0}
.info{background:#eef3fa;border-left:4px solid #4878a8;padding:.4rem .7rem;margin:.3rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.7rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem}
.card b{display:block;font-size:1.3rem}.row{display:flex;flex-wrap:wrap;gap:1.5rem}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem}pre{white-space:pre-wrap;
background:#f8f8f8;padding:.4rem;margin:0;max-height:12rem;overflow:auto}
svg text{font-size:10px;fill:#444}svg .grid{stroke:#eee}svg .axis{stroke:#999}
"""
PALETTE = ("#4878a8", "#e0a030", "#5aa05a", "#c04848", "#8a62b0", "#7a6a50", "#d070b0", "#708090")
SERIES_COLORS = {"train": PALETTE[0], "validation": PALETTE[1], "test": PALETTE[2]}
NOTICE_KINDS = ("warn", "ok", "info")


def escape(v: Any) -> str:
    """``str(v)`` escaped for use in element text and in quoted attributes."""
    return _html.escape(str(v), quote=True)


def fmt(v: Any, digits: int = 4) -> str:
    """A number for display: ints as they are, floats to ``digits`` significant figures."""
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def color_for(name: str, i: int) -> str:
    """The colour of series ``name`` (the ``i``-th): a fixed one for splits, else from the palette."""
    return SERIES_COLORS.get(name, PALETTE[i % len(PALETTE)])


def page(
    title: str, body_html: str, *, subtitle: str = "", nav: Sequence[tuple[str, str]] = (), css: str = ""
) -> str:
    """A whole self-contained document; ``nav`` is (section id, label) pairs linking within the page;
    ``css`` is the page's own style, after the shared one."""
    links = "".join(f"<a href='#{escape(i)}'>{escape(label)}</a>" for i, label in nav)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}{css}</style></head><body><h1>{escape(title)}</h1>"
        + (f"<p class='sub'>{escape(subtitle)}</p>" if subtitle else "")
        + (f"<nav>{links}</nav>" if links else "")
        + body_html
        + "</body></html>\n"
    )


def section(title: str, body: str, *, id: str | None = None, level: int = 2) -> str:
    """A titled section (``<h2>`` by default); ``id`` makes it a target for ``page(nav=...)``."""
    attr = f" id='{escape(id)}'" if id else ""
    return f"<section{attr}><h{level}>{escape(title)}</h{level}>{body}</section>"


def row(*parts: str) -> str:
    """Fragments (charts, usually) side by side, wrapping on narrow screens."""
    return f"<div class='row'>{''.join(parts)}</div>"


def paragraph(text: str) -> str:
    """A paragraph of plain text."""
    return f"<p>{escape(text)}</p>"


def notice(text: str, kind: str = "warn") -> str:
    """A highlighted line: ``kind`` is "warn", "ok" or "info"."""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"notice kind must be one of {NOTICE_KINDS}, not {kind!r}")
    return f"<div class='{kind}'>{escape(text)}</div>"


def cards(items: Iterable[tuple[Any, str]]) -> str:
    """Headline figures: one card per (value, label)."""
    body = "".join(f"<div class='card'><b>{escape(v)}</b>{escape(label)}</div>" for v, label in items)
    return f"<div class='cards'>{body}</div>"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    numeric: Iterable[int] = (),
    *,
    caption: str = "",
) -> str:
    """A table; columns whose index is in ``numeric`` are right-aligned (class ``n``)."""
    num = set(numeric)

    def cell(tag: str, i: int, v: Any) -> str:
        return f"<{tag} class='n'>{escape(v)}</{tag}>" if i in num else f"<{tag}>{escape(v)}</{tag}>"

    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _no_data(title: str, what: str = "no data") -> str:
    return f"<p><i>{escape(title) + ': ' if title else ''}{escape(what)}</i></p>"


def _svg_open(width: float, height: float, title: str) -> str:
    return (
        f"<svg width='{width:.0f}' height='{height:.0f}' role='img' aria-label='{escape(title)}'>"
        f"<text x='0' y='11'>{escape(title)}</text>"
    )


def _number(v: Any) -> float:
    """``float(v)``, or NaN when it is not a finite number."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _label(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.4g}"


def _width(v: float, top: float, room: float) -> float:
    return 0.0 if math.isnan(v) else max(room * v / top, 0.0)


def bar_chart(
    values: Mapping[Any, float],
    *,
    width: int = 360,
    color: str = PALETTE[0],
    title: str = "",
    label_chars: int = 18,
) -> str:
    """Horizontal bars, one per key, with the value printed after each bar."""
    if not values:
        return _no_data(title)
    nums = {k: _number(v) for k, v in values.items()}
    top = max((v for v in nums.values() if not math.isnan(v)), default=0.0)
    top = top if top > 0 else 1.0
    parts = [_svg_open(width, 18 * len(values) + 24, title)]
    for i, (k, v) in enumerate(values.items()):
        y = 18 + 18 * i
        w = _width(nums[k], top, width - 170)
        parts.append(
            f"<text x='0' y='{y + 11}'><title>{escape(k)}</title>{escape(str(k)[:label_chars])}</text>"
            f"<rect x='110' y='{y}' width='{w:.1f}' height='13' fill='{escape(color)}'/>"
            f"<text x='{114 + w:.1f}' y='{y + 11}'>{escape(fmt(v))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def grouped_bar_chart(
    groups: Mapping[str, Mapping[Any, float]], *, width: int = 420, title: str = "", label_chars: int = 18
) -> str:
    """Horizontal bars per category, one bar per group (e.g. label counts per split), with a legend."""
    cats = list(dict.fromkeys(k for g in groups.values() for k in g))
    if not cats:
        return _no_data(title)
    names = list(groups)
    nums = {(n, k): _number(groups[n].get(k, 0)) for n in names for k in cats}
    top = max((v for v in nums.values() if not math.isnan(v)), default=0.0)
    top = top if top > 0 else 1.0
    legend, lines = _legend(names, 0, 26, width)
    band, head = 14 * len(names) + 6, 21 + 13 * lines
    parts = [_svg_open(width, head + band * len(cats), title), legend]
    for j, k in enumerate(cats):
        y0 = head + band * j
        parts.append(
            f"<text x='0' y='{y0 + 11}'><title>{escape(k)}</title>{escape(str(k)[:label_chars])}</text>"
        )
        for i, n in enumerate(names):
            v, y = nums[(n, k)], y0 + 14 * i
            w = _width(v, top, width - 170)
            parts.append(
                f"<rect x='110' y='{y}' width='{w:.1f}' height='12' fill='{color_for(n, i)}'>"
                f"<title>{escape(n)}: {escape(fmt(v))}</title></rect>"
                f"<text x='{114 + w:.1f}' y='{y + 10}'>{escape(fmt(groups[n].get(k, 0)))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    counts: Sequence[float],
    edges: Sequence[float],
    *,
    title: str = "",
    color: str = PALETTE[0],
    width: int = 330,
    height: int = 150,
    x_labels: tuple[str, str] | None = None,
    empty: str = "no data",
) -> str:
    """Vertical bars for bins ``edges[i]..edges[i+1]``; ``x_labels`` overrides the two end labels."""
    if not counts or not any(_number(c) > 0 for c in counts):
        return _no_data(title, empty)
    nums = [0.0 if math.isnan(c) else max(c, 0.0) for c in map(_number, counts)]
    top = max(nums)
    bw, plot_h = (width - 40) / len(nums), height - 40
    lo, hi = x_labels or (fmt(edges[0]) if edges else "", fmt(edges[-1]) if edges else "")
    parts = [_svg_open(width, height, title)]
    for i, c in enumerate(nums):
        bh = plot_h * c / top
        rng = f"{_number(edges[i]):g}-{_number(edges[i + 1]):g}: " if i + 1 < len(edges) else ""
        parts.append(
            f"<rect x='{30 + i * bw:.1f}' y='{18 + plot_h - bh:.1f}' width='{max(bw - 1, 1):.1f}' "
            f"height='{bh:.1f}' fill='{escape(color)}'>"
            f"<title>{escape(rng)}{escape(fmt(counts[i]))}</title></rect>"
        )
    parts.append(
        f"<text x='30' y='{height - 8}'>{escape(lo)}</text>"
        f"<text x='{width - 60}' y='{height - 8}'>{escape(hi)}</text>"
        f"<text x='0' y='26'>{escape(_label(top))}</text></svg>"
    )
    return "".join(parts)


def _ticks(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[tuple[float, str]]]:
    """A padded, rounded domain around [lo, hi] and about ``n`` round (tick, label) pairs across it."""
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    try:
        raw = (hi - lo) / max(n - 1, 1)
        mag = 10.0 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
        a, b = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        ticks = [float(f"{k * step:.15g}") for k in range(a, b + 1)]
    except (ValueError, OverflowError, ZeroDivisionError):  # spans beyond float range
        ticks = []
    if len(ticks) < 2 or ticks[-1] <= ticks[0]:  # nothing round fits: label the ends
        return lo, hi, [(lo, f"{lo:.6g}"), (hi, f"{hi:.6g}")]
    big = math.floor(math.log10(max(abs(t) for t in ticks) or step))
    sig = min(max(big - math.floor(math.log10(step)) + 2, big + 1, 1), 17)
    return ticks[0], ticks[-1], [(t, f"{t:.{sig}g}") for t in ticks]


def _legend(names: Sequence[str], x: float, y: float, width: float) -> tuple[str, int]:
    """Colour keys for ``names`` from (x, y), wrapping before ``width``; returns (svg, lines used)."""
    out, cx, cy, lines = [], x, y, 1
    for i, name in enumerate(names):
        w = 18 + 6 * len(str(name))
        if cx > x and cx + w > width:
            cx, cy, lines = x, cy + 13, lines + 1
        out.append(
            f"<rect x='{cx:.0f}' y='{cy - 8}' width='10' height='8' fill='{color_for(name, i)}'/>"
            f"<text x='{cx + 13:.0f}' y='{cy}'>{escape(name)}</text>"
        )
        cx += w + 8
    return "".join(out), lines


def _points(pts: Iterable[Any]) -> list[tuple[float, float]]:
    """The finite (x, y) pairs of ``pts``; anything else (NaN, None, short tuples) is dropped."""
    out = []
    for p in pts:
        try:
            x, y = _number(p[0]), _number(p[1])
        except (TypeError, IndexError, KeyError):
            continue
        if not (math.isnan(x) or math.isnan(y)):
            out.append((x, y))
    return out


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = 480,
    height: int = 260,
) -> str:
    """One polyline per series of (x, y) points, with ticked axes and a legend; NaN/inf points are skipped."""
    clean = {str(name): _points(pts) for name, pts in series.items()}
    xs = [x for pts in clean.values() for x, _ in pts]
    ys = [y for pts in clean.values() for _, y in pts]
    if not xs:
        return _no_data(title)
    names = list(clean)
    left, right, bottom = 52, 12, 32 + (12 if x_label else 0)
    legend, lines = _legend(names, left, 26, width)
    top = 21 + 13 * lines
    x0, x1, xt = _ticks(min(xs), max(xs))
    y0, y1, yt = _ticks(min(ys), max(ys))
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + ph * (1 - (y - y0) / (y1 - y0))

    parts = [_svg_open(width, height, title), legend]
    for t, label in yt:
        parts.append(
            f"<line class='grid' x1='{left}' x2='{left + pw}' y1='{py(t):.1f}' y2='{py(t):.1f}'/>"
            f"<text x='{left - 4}' y='{py(t) + 3:.1f}' text-anchor='end'>{escape(label)}</text>"
        )
    for t, label in xt:
        parts.append(
            f"<line class='axis' x1='{px(t):.1f}' x2='{px(t):.1f}' y1='{top + ph}' y2='{top + ph + 4}'/>"
            f"<text x='{px(t):.1f}' y='{top + ph + 15}' text-anchor='middle'>{escape(label)}</text>"
        )
    parts.append(
        f"<line class='axis' x1='{left}' x2='{left}' y1='{top}' y2='{top + ph}'/>"
        f"<line class='axis' x1='{left}' x2='{left + pw}' y1='{top + ph}' y2='{top + ph}'/>"
    )
    if x_label:
        parts.append(
            f"<text x='{left + pw / 2:.0f}' y='{height - 4}' text-anchor='middle'>{escape(x_label)}</text>"
        )
    if y_label:
        parts.append(
            f"<text transform='translate(10 {top + ph / 2:.0f}) rotate(-90)' text-anchor='middle'>"
            f"{escape(y_label)}</text>"
        )
    for i, name in enumerate(names):
        pts, c = clean[name], color_for(name, i)
        if not pts:
            continue
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(
            f"<polyline fill='none' stroke='{c}' stroke-width='1.5' points='{coords}'>"
            f"<title>{escape(name)}</title></polyline>"
        )
        if len(pts) == 1:
            parts.append(f"<circle cx='{px(pts[0][0]):.1f}' cy='{py(pts[0][1]):.1f}' r='3' fill='{c}'/>")
    parts.append("</svg>")
    return "".join(parts)
