"""The report's own figures (inline HTML and SVG, no script): a shaded confusion matrix, a reliability
diagram, word spans shaded by attribution. Everything else is drawn with :mod:`tunelab.html`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tunelab.html import PALETTE, escape, fmt

LEVELS = 6
SHADES = {"p": "214,96,77", "n": "67,147,195"}  # towards the predicted target, against it (as explain's)
CSS = (
    "".join(
        f".w{k}{i}{{background:rgba({rgb},{0.8 * i / LEVELS:.2f})}}"
        for k, rgb in SHADES.items()
        for i in range(1, LEVELS + 1)
    )
    + ".words{line-height:1.9}.words span{padding:1px 2px;border-radius:3px}"
    + "table.cm td{text-align:center;min-width:2.6rem;font-variant-numeric:tabular-nums}"
    + "table.cm th{font-weight:normal}"
)


def confusion(matrix: Any, labels: Sequence[Any], max_labels: int = 20) -> str:
    """Gold (rows) x predicted (columns) counts, each cell shaded by its share of its row."""
    rows = [list(r) for r in matrix if isinstance(r, list | tuple)] if isinstance(matrix, list) else []
    n = len(rows)
    if not n or any(len(r) != n for r in rows) or n > max_labels:
        return (
            "<p><i>confusion matrix not shown ("
            + ("too many labels" if n > max_labels else "no data")
            + ")</i></p>"
        )
    names = [str(x) for x in labels] if len(labels) == n else [str(i) for i in range(n)]
    head = "".join(f"<th>{escape(x)}</th>" for x in names)
    body = []
    for i, r in enumerate(rows):
        counts = [_count(c) for c in r]
        total = sum(counts) or 1
        cells = []
        for j, c in enumerate(counts):
            rgb = "72,120,168" if i == j else "192,72,72"
            alpha = 0.75 * c / total
            cells.append(
                f"<td style='background:rgba({rgb},{alpha:.2f})' title='gold {escape(names[i])}, "
                f"predicted {escape(names[j])}: {c}'>{c}</td>"
            )
        body.append(f"<tr><th>{escape(names[i])}</th>{''.join(cells)}<td class='n'>{sum(counts)}</td></tr>")
    return (
        "<table class='cm'><caption>rows: gold label · columns: predicted</caption>"
        f"<tr><th>gold \\ predicted</th>{head}<th>total</th></tr>{''.join(body)}</table>"
    )


def _count(c: Any) -> int:
    try:
        x = float(c)
    except (TypeError, ValueError):
        return 0
    return int(x) if math.isfinite(x) and x > 0 else 0


def reliability_bins(points: Sequence[tuple[float, float]], n_bins: int = 10) -> list[dict[str, float]]:
    """Equal-width confidence bins of (confidence, outcome 0/1) points: count, mean confidence, accuracy."""
    sums = [[0, 0.0, 0.0] for _ in range(n_bins)]
    for conf, hit in points:
        if not (math.isfinite(conf) and 0.0 <= conf <= 1.0):
            continue
        b = min(int(conf * n_bins), n_bins - 1)
        sums[b][0] += 1
        sums[b][1] += conf
        sums[b][2] += hit
    return [
        {"low": b / n_bins, "high": (b + 1) / n_bins, "count": c, "confidence": s / c, "accuracy": a / c}
        for b, (c, s, a) in enumerate(sums)
        if c
    ]


def ece(bins: Sequence[dict[str, float]]) -> float:
    total = sum(b["count"] for b in bins) or 1
    return sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total


def reliability(bins: Sequence[dict[str, float]], *, title: str, size: int = 260) -> str:
    """Accuracy per confidence bin (bars) against the diagonal of perfect calibration."""
    if not bins:
        return "<p><i>reliability diagram: no predictions with probabilities</i></p>"
    left, top, pad = 36, 22, 26
    side = size - left - 10

    def x(v: float) -> float:
        return left + side * v

    def y(v: float) -> float:
        return top + side * (1 - v)

    most = max(b["count"] for b in bins)
    parts = [
        f"<svg width='{size}' height='{top + side + pad}' role='img' aria-label='{escape(title)}'>"
        f"<text x='0' y='11'>{escape(title)}</text>"
        f"<rect x='{left}' y='{top}' width='{side}' height='{side}' fill='none' class='axis' stroke='#999'/>"
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f"<line class='grid' x1='{left}' x2='{x(1):.1f}' y1='{y(t):.1f}' y2='{y(t):.1f}'/>"
            f"<text x='{left - 4}' y='{y(t) + 3:.1f}' text-anchor='end'>{t:g}</text>"
            f"<text x='{x(t):.1f}' y='{top + side + 13}' text-anchor='middle'>{t:g}</text>"
        )
    for b in bins:
        x0, w = x(b["low"]) + 1, side * (b["high"] - b["low"]) - 2
        h = side * b["accuracy"]
        opacity = 0.35 + 0.55 * b["count"] / most
        parts.append(
            f"<rect x='{x0:.1f}' y='{y(b['accuracy']):.1f}' width='{w:.1f}' height='{h:.1f}' "
            f"fill='{PALETTE[0]}' fill-opacity='{opacity:.2f}'><title>confidence {b['low']:g}-{b['high']:g}: "
            f"{b['count']} predictions, accuracy {fmt(b['accuracy'], 3)}, mean confidence "
            f"{fmt(b['confidence'], 3)}</title></rect>"
            f"<circle cx='{x(b['confidence']):.1f}' cy='{y(b['accuracy']):.1f}' r='2.5' fill='{PALETTE[3]}'/>"
        )
    parts.append(
        f"<line x1='{x(0):.1f}' y1='{y(0):.1f}' x2='{x(1):.1f}' y2='{y(1):.1f}' stroke='#888' "
        "stroke-dasharray='4 3'/>"
        f"<text x='{left + side / 2:.0f}' y='{top + side + pad - 1}' text-anchor='middle'>confidence</text>"
        f"<text transform='translate(9 {top + side / 2:.0f}) rotate(-90)' text-anchor='middle'>"
        "accuracy</text>"
        "</svg>"
    )
    return "".join(parts)


def shaded_words(words: Sequence[Any], scores: Sequence[Any]) -> str:
    """Each word a ``<span>`` shaded by its score (scaled by the largest |score|), the score as tooltip."""
    vals = []
    for s in scores:
        try:
            v = float(s)
        except (TypeError, ValueError):
            v = math.nan
        vals.append(v if math.isfinite(v) else None)
    top = max((abs(v) for v in vals if v is not None), default=0.0) or 1.0
    out = []
    for i, word in enumerate(words):
        v = vals[i] if i < len(vals) else None
        cls = ""
        if v:
            level = min(LEVELS, max(1, math.ceil(LEVELS * abs(v) / top)))
            cls = f" class='w{'p' if v > 0 else 'n'}{level}'"
        tip = "no score" if v is None else fmt(v, 3)
        out.append(f"<span{cls} title='{escape(tip)}'>{escape(word)}</span>")
    return "<span class='words'>" + " ".join(out) + "</span>"


def legend() -> str:
    return (
        "<p class='words'>Word colours: <span class='wp5'>towards the predicted label</span> "
        "<span class='wn5'>against it</span>; scaled by each example's largest |score|. "
        "Hover a word for its score.</p>"
    )
