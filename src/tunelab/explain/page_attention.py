"""Heatmaps for the explain page: word/token spans, the agreement matrix, the answer-token map and the
CSS-only attention layer/head picker.

Attention maps are drawn compactly: only cells with weight >= ``THRESHOLD``, shaded in ``LEVELS`` steps
of sqrt(weight), each step one stroked ``<path>`` of horizontal runs, so a 40 x 40 map costs a few KB.
Choosing a layer or head is pure CSS (radio inputs, labels and ``:checked ~`` selectors; no script).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tunelab.html import escape, fmt

THRESHOLD = 0.02
LEVELS = 6
CELL = 9
MARGIN = 66
MAX_HEAD_MAPS = 144  # beyond layers x heads = this, only the head-averaged map of each layer is drawn
MAX_ROWS, MAX_COLS = 40, 80  # answer-token map size cap
HUE = "#2c5d8f"
POS, NEG = (214, 96, 77), (67, 147, 195)
WORD_LEVELS = 6
SHADES = {"p": "214,96,77", "n": "67,147,195", "u": "90,160,90"}  # towards the target, against, unsigned
HEAT_CSS = "".join(
    f".{k}{i}{{background:rgba({rgb},{0.85 * i / WORD_LEVELS:.2f})}}"
    for k, rgb in SHADES.items()
    for i in range(1, WORD_LEVELS + 1)
)

CSS = """
.att{margin:1rem 0;border:1px solid #ddd;border-radius:6px;padding:.3rem .8rem .6rem}
.att>input{position:absolute;opacity:0;pointer-events:none}
.pick{font-size:.8rem;margin:.3rem 0}.pick div{margin:.1rem 0}.pick b{display:inline-block;width:4.5rem}
.pick label{display:inline-block;min-width:1.4rem;text-align:center;border:1px solid #ccc;border-radius:3px;
margin:0 1px;cursor:pointer;padding:0 2px}.amap .m{display:none}
"""


def _opt(v: Any) -> float | None:
    """``float(v)``, or None when it is not a finite number."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _num(v: Any) -> float:
    return _opt(v) or 0.0


def matrix(m: Any) -> list[list[float]]:
    """A nested list of floats from any nested sequence; missing or non-finite entries become 0."""
    if not isinstance(m, Sequence) or isinstance(m, str):
        return []
    return [[_num(v) for v in r] if isinstance(r, Sequence) and not isinstance(r, str) else [] for r in m]


def _short(tok: Any, n: int = 9) -> str:
    s = str(tok)
    return s if len(s) <= n else s[: n - 1] + "…"


def cells_svg(m: list[list[float]], cls: str = "", label: str = "") -> str:
    """The cells of ``m`` (rows x cols) as a nested SVG placed on a ``frame`` plot area."""
    rows, cols = len(m), max((len(r) for r in m), default=0)
    paths: dict[int, list[str]] = {}
    last: dict[int, tuple[int, int]] = {}  # level -> (row, x after its last run)
    for r, vals in enumerate(m):
        c = 0
        while c < len(vals):
            lev = _level(vals[c])
            end = c + 1
            while end < len(vals) and _level(vals[end]) == lev:
                end += 1
            if lev:
                prev = last.get(lev)
                d = f"m{c - prev[1]} 0h{end - c}" if prev and prev[0] == r else f"M{c} {r}h{end - c}"
                paths.setdefault(lev, []).append(d)
                last[lev] = (r, end)
            c = end
    body = "".join(
        f"<path stroke-opacity='{lev / LEVELS:.2f}' d='{''.join(ds)}'/>" for lev, ds in sorted(paths.items())
    )
    attr = f" class='m {cls}'" if cls else ""
    aria = f" aria-label='{escape(label)}'" if label else ""
    return (
        f"<svg{attr}{aria} x='{MARGIN}' y='{MARGIN}' width='{cols * CELL}' height='{rows * CELL}' "
        f"viewBox='0 -.5 {cols} {rows}' preserveAspectRatio='none'>"
        f"<g stroke='{HUE}' stroke-width='1' fill='none' shape-rendering='crispEdges'>{body}</g></svg>"
    )


def _level(w: float) -> int:
    return min(LEVELS, max(1, math.ceil(LEVELS * math.sqrt(w)))) if w >= THRESHOLD else 0


def frame(rows: Sequence[Any], cols: Sequence[Any], title: str, inner: str) -> str:
    """An SVG with row labels (left), rotated column labels (top), a border and ``inner`` on the plot."""
    w, ht = MARGIN + CELL * len(cols) + 4, MARGIN + CELL * len(rows) + 4
    parts = [f"<svg width='{w}' height='{ht}' role='img' aria-label='{escape(title)}'>"]
    parts.append(f"<text x='0' y='10'>{escape(title)}</text>")
    for i, t in enumerate(cols):
        x = MARGIN + CELL * i + CELL - 2
        parts.append(
            f"<text font-size='8' transform='translate({x} {MARGIN - 3}) rotate(-90)'>"
            f"{escape(_short(t))}</text>"
        )
    for i, t in enumerate(rows):
        y = MARGIN + CELL * i + CELL - 1
        parts.append(
            f"<text font-size='8' x='{MARGIN - 3}' y='{y}' text-anchor='end'>{escape(_short(t))}</text>"
        )
    parts.append(
        f"<rect x='{MARGIN}' y='{MARGIN}' width='{CELL * len(cols)}' height='{CELL * len(rows)}' "
        f"fill='none' stroke='#ccc'/>{inner}</svg>"
    )
    return "".join(parts)


def _keys(n_layers: int, n_heads: int) -> list[str]:
    """Picker keys: ``l{i}a`` (layer i's head average) and, when affordable, ``l{i}h{j}`` per head."""
    per_head = n_layers * n_heads <= MAX_HEAD_MAPS
    keys = []
    for li in range(n_layers):
        keys.append(f"l{li}a")
        if per_head:
            keys += [f"l{li}h{j}" for j in range(n_heads)]
    return keys


def css(attention: Any) -> str:
    """The picker's CSS: one ``:checked ~`` rule per layer/head key used on the page."""
    dims = [_dims(a) for a in _examples(attention)]
    if not dims:
        return ""
    keys = list(dict.fromkeys(k for n_l, n_h in dims for k in _keys(n_l, n_h)))
    show = ",".join(f".att>input.{k}:checked~.row .{k}" for k in keys)
    mark = ",".join(f".att>input.{k}:checked~.pick .{k}" for k in keys)
    return CSS + f"{show}{{display:inline}}{mark}{{background:#246;color:#fff;border-color:#246}}"


def _examples(attention: Any) -> list[Mapping[str, Any]]:
    ex = attention.get("examples") if isinstance(attention, Mapping) else None
    return [a for a in ex or [] if isinstance(a, Mapping)]


def _dims(a: Mapping[str, Any]) -> tuple[int, int]:
    maps = a.get("maps") or []
    return len(maps), max((len(layer) for layer in maps if isinstance(layer, Sequence)), default=0)


def _mean(heads: list[list[list[float]]]) -> list[list[float]]:
    n = len(heads)
    rows = max((len(hm) for hm in heads), default=0)
    cols = max((len(r) for hm in heads for r in hm), default=0)
    out = [[0.0] * cols for _ in range(rows)]
    for hm in heads:
        for i, r in enumerate(hm):
            for j, v in enumerate(r):
                out[i][j] += v / n
    return out


def attention_view(a: Mapping[str, Any], pos: int) -> str:
    """One example's picker (layer averages, heads when affordable) beside its static rollout map."""
    maps = a.get("maps") or []
    n_layers, n_heads = _dims(a)
    tokens = list(a.get("tokens") or [])
    shape = list(a.get("shape") or [])
    title = f"Example {a.get('index', pos)}"
    if not n_layers or not n_heads:
        return (
            f"<div class='att'><h3>{escape(title)}</h3><p><i>no attention maps in the payload</i></p></div>"
        )
    size = len(matrix(maps[0][0]))
    tokens = (tokens + [""] * size)[:size]
    keys = _keys(n_layers, n_heads)
    default = f"l{n_layers - 1}a"
    inputs = "".join(
        f"<input type='radio' name='att{pos}' id='att{pos}-{k}' class='{k}'"
        f"{' checked' if k == default else ''} aria-label='{k}'>"
        for k in keys
    )
    pick, inner = [], []
    for li in range(n_layers):
        heads = [matrix(hm) for hm in maps[li]]
        links = [f"<label for='att{pos}-l{li}a' class='l{li}a'>avg</label>"]
        inner.append(cells_svg(_mean(heads), f"l{li}a", f"layer {li}, mean of heads"))
        if f"l{li}h0" in keys:
            for j, hm in enumerate(heads):
                links.append(f"<label for='att{pos}-l{li}h{j}' class='l{li}h{j}'>{j}</label>")
                inner.append(cells_svg(hm, f"l{li}h{j}", f"layer {li}, head {j}"))
        pick.append(f"<div><b>layer {li}</b>{''.join(links)}</div>")
    full = shape[-1] if len(shape) == 4 else size
    note = (
        f"Rows are queries, columns keys; first {size} of {full} tokens. Cells with weight >= {THRESHOLD} "
        f"are drawn, shade ∝ √weight. Pick a layer's head average ('avg') or a head:"
    )
    if f"l{n_layers - 1}h0" not in keys:
        note += f" ({n_layers} x {n_heads} heads is too many to draw each; head averages only)"
    rollout = matrix(a.get("rollout"))
    roll = (
        frame(tokens[: len(rollout)], tokens[: len(rollout)], "attention rollout", cells_svg(rollout))
        if rollout
        else "<p><i>no rollout</i></p>"
    )
    chosen = frame(tokens, tokens, "selected layer / head", "".join(inner))
    return (
        f"<div class='att'><h3>{escape(title)}</h3>{inputs}<p class='sub'>{escape(note)}</p>"
        f"<div class='pick'>{''.join(pick)}</div><div class='row'><div class='amap'>{chosen}</div>"
        f"<div>{roll}</div></div></div>"
    )


def attention_body(attention: Any) -> str:
    """Every attention example's view, or '' when there are none."""
    return "".join(attention_view(a, i) for i, a in enumerate(_examples(attention)))


def _rgba(v: float, top: float) -> tuple[str, float]:
    r, g, b = POS if v > 0 else NEG
    return f"rgb({r},{g},{b})", min(abs(v) / top, 1.0)


def signed_heatmap(m: Any, rows: Sequence[Any], cols: Sequence[Any], title: str) -> str:
    """A diverging heatmap (positive red, negative blue, scaled by max |value|) with a tooltip per cell."""
    mat = [r[:MAX_COLS] for r in matrix(m)[:MAX_ROWS]]
    n_cols = max((len(r) for r in mat), default=0)
    if not n_cols:
        return "<p><i>no per-answer-token scores</i></p>"
    top = max(abs(v) for r in mat for v in r) or 1.0
    rows = [str(t) for t in rows][: len(mat)] + [""] * max(0, len(mat) - len(rows))
    cols = [str(t) for t in cols][:n_cols] + [""] * max(0, n_cols - len(cols))
    cells = []
    for i, r in enumerate(mat):
        for j, v in enumerate(r):
            if v:
                fill, op = _rgba(v, top)
                cells.append(
                    f"<rect x='{MARGIN + CELL * j}' y='{MARGIN + CELL * i}' width='{CELL}' height='{CELL}' "
                    f"fill='{fill}' fill-opacity='{op:.2f}'><title>{escape(rows[i])} ← {escape(cols[j])}: "
                    f"{escape(fmt(v, 3))}</title></rect>"
                )
    return frame(rows, cols, title, "".join(cells))


def agreement(pairs: Any, order: Sequence[str]) -> str:
    """Mean Kendall tau between methods' word rankings as a colour-scaled methods x methods table."""
    taus: dict[tuple[str, str], tuple[float | None, Any]] = {}
    for e in pairs or []:
        e = e if isinstance(e, Mapping) else {}
        a, b = str(e.get("a")), str(e.get("b"))
        taus[(a, b)] = taus[(b, a)] = (_opt(e.get("kendall_tau")), e.get("n", "?"))
    names = [m for m in order if any(m in k for k in taus)] + sorted({a for a, _ in taus} - set(order))
    if not names:
        return "<p><i>No rank agreement between methods computed.</i></p>"

    def cell(a: str, b: str) -> str:
        if a == b:
            return "<td>1</td>"
        t, n = taus.get((a, b), (None, 0))
        if t is None:
            return "<td>—</td>"
        rgb = "72,120,168" if t >= 0 else "214,96,77"
        shade = f"background:rgba({rgb},{0.7 * min(abs(t), 1):.2f})"
        return f"<td style='{shade}' title='n={escape(n)}'>{t:.2f}</td>"

    head = "".join(f"<th>{escape(m)}</th>" for m in names)
    body = "".join(f"<tr><th>{escape(a)}</th>{''.join(cell(a, b) for b in names)}</tr>" for a in names)
    cap = "Rank agreement: mean Kendall tau over examples' words (1 = same order, -1 = reversed)"
    return f"<table class='tau'><caption>{cap}</caption><tr><th></th>{head}</tr>{body}</table>"


def heat_spans(
    items: Sequence[Any], scores: Sequence[Any], unsigned: bool, special: Sequence[bool] = ()
) -> str:
    """Each item a ``<span>`` shaded by its score (scaled by max |score|) with the score as tooltip."""
    vals = [_opt(s) for s in scores]
    top = max((abs(v) for v in vals if v is not None), default=0.0) or 1.0
    out = []
    for i, item in enumerate(items):
        v = vals[i] if i < len(vals) else None
        cls = []
        if v:
            kind = "u" if unsigned else ("p" if v > 0 else "n")
            cls.append(f"{kind}{min(WORD_LEVELS, max(1, math.ceil(WORD_LEVELS * abs(v) / top)))}")
        if i < len(special) and special[i]:
            cls.append("sp")
        attr = f" class='{' '.join(cls)}'" if cls else ""
        out.append(f"<span{attr} title='{'no score' if v is None else fmt(v, 3)}'>{escape(item)}</span>")
    return " ".join(out)


def legend() -> str:
    """What the heatmap colours mean."""
    sw = "<span class='{0}'>{1}</span>"
    return (
        "<p class='hm'>Word colours: "
        + sw.format("p5", "towards the predicted target")
        + " "
        + sw.format("n5", "against it")
        + " "
        + sw.format("u5", "unsigned (saliency, attention)")
        + "; scaled by each method's largest |score| in the example. Hover a word for its score.</p>"
    )
