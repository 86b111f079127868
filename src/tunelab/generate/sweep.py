"""The decoding sweep: a grid of settings, one row of metrics per setting, the quality-vs-diversity
Pareto front, the setting that meets a diversity target best, and an SVG scatter plot of it all.

Everything here is pure: :func:`run_sweep` takes the generate and score functions, so the caller
decides the model, the prompts and the metrics. Rows are JSON-able (floats, ints, strings, None).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tunelab.generate.config import DIVERSITY_METRICS, DecodingConfig, SweepConfig
from tunelab.generate.metrics import higher_is_more_diverse
from tunelab.html import PALETTE, _ticks, escape, fmt

SETTING_KEYS = frozenset(DecodingConfig.model_fields)


def grid(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Every temperature x top_p (x min_p when given) combination, each a dict of decoding overrides.

    Temperature 0 is greedy, where top-p and min-p do nothing: it appears once, with them ``None``.
    """
    min_ps: list[float | None] = list(sweep.min_ps) or [None]
    out: list[dict[str, Any]] = []
    for t, p, m in itertools.product(sweep.temperatures, sweep.top_ps, min_ps):
        s: dict[str, Any] = {"temperature": float(t), "top_p": float(p) if t > 0 else None}
        if sweep.min_ps:
            s["min_p"] = float(m) if t > 0 and m is not None else None
        if s not in out:
            out.append(s)
    return out


def label(settings: Mapping[str, Any]) -> str:
    """A short name for a setting: ``T0.7 p0.9`` (``m0.05`` when min-p is set; ``T0 greedy``)."""
    t = settings.get("temperature")
    if t == 0:
        return "T0 greedy"
    parts = [f"T{t:g}" if isinstance(t, int | float) else "T?"]
    for key, short in (("top_p", "p"), ("min_p", "m"), ("top_k", "k")):
        v = settings.get(key)
        if isinstance(v, int | float):
            parts.append(f"{short}{v:g}")
    return " ".join(parts)


def _jsonable(v: Any) -> Any:
    """Plain Python values: numpy scalars become int/float, non-finite floats None."""
    if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
        v = v.item()
    if isinstance(v, bool) or v is None or isinstance(v, str | int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return float(v)


def run_sweep(
    generate_fn: Callable[[dict[str, Any]], list[list[str]]],
    score_fn: Callable[[list[list[str]]], Mapping[str, Any]],
    settings: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row ``{settings..., metrics...}`` per setting.

    ``generate_fn(overrides)`` returns the samples of each prompt; ``score_fn(groups)`` a flat dict of
    metrics (diversity figures and quality keys such as ``perplexity`` or ``rouge_l``).
    """
    rows = []
    for s in settings:
        metrics = dict(score_fn(generate_fn(dict(s))))
        clash = sorted(set(metrics) & set(s))
        if clash:
            raise ValueError(f"score_fn returned metric(s) {clash} named like decoding settings")
        rows.append(_jsonable({**s, **metrics}))
    return rows


def _value(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def _more_diverse_sign(name: str) -> float:
    """+1 when a larger ``name`` is more diverse, -1 when smaller is (unknown names: larger)."""
    return 1.0 if name not in DIVERSITY_METRICS or higher_is_more_diverse(name) else -1.0


def pareto_front(
    rows: Sequence[Mapping[str, Any]],
    diversity_key: str = "distinct_2",
    quality_key: str = "perplexity",
    quality_higher_is_better: bool = False,
) -> list[int]:
    """Indices (ascending) of the rows no other row beats on both diversity and quality.

    Row j dominates row i when it is at least as diverse and at least as good, and strictly better
    in one. Rows missing either value are left out.
    """
    ds, qs = _more_diverse_sign(diversity_key), 1.0 if quality_higher_is_better else -1.0
    pts = {}
    for i, r in enumerate(rows):
        d, q = _value(r, diversity_key), _value(r, quality_key)
        if d is not None and q is not None:
            pts[i] = (ds * d, qs * q)  # both oriented so larger is better
    return [
        i
        for i, (d, q) in pts.items()
        if not any(d2 >= d and q2 >= q and (d2 > d or q2 > q) for j, (d2, q2) in pts.items() if j != i)
    ]


def _meets(v: float | None, metric: str, goal: float) -> bool:
    if v is None:
        return False
    return v >= goal if _more_diverse_sign(metric) > 0 else v <= goal


def _target_text(target: Mapping[str, float]) -> str:
    return " and ".join(f"{m} {'>=' if _more_diverse_sign(m) > 0 else '<='} {g:g}" for m, g in target.items())


def _shown(v: float | None) -> str:
    return "missing" if v is None else fmt(v)


def _shortfall(row: Mapping[str, Any], target: Mapping[str, float]) -> float:
    """How far a row is from the target: the summed relative gaps (a missing value counts as 1)."""
    total = 0.0
    for m, goal in target.items():
        v = _value(row, m)
        gap = 1.0 if v is None else max(0.0, _more_diverse_sign(m) * (goal - v)) / max(abs(goal), 1e-9)
        total += gap
    return total


def choose_for_target(
    rows: Sequence[Mapping[str, Any]],
    target: Mapping[str, float],
    quality_key: str = "perplexity",
    quality_higher_is_better: bool = False,
) -> dict[str, Any]:
    """Among the rows meeting every target, the one with the best quality.

    Each target is a bound in the metric's more-diverse direction (``distinct_2: 0.6`` means at
    least 0.6, ``self_bleu: 0.3`` at most 0.3). Returns ``{"chosen": index or None, "settings":
    that row's decoding settings or None, "reason": a sentence}``; when none meets the target the
    reason names the row that came closest (also returned as ``"closest"``).
    """
    if not rows:
        return {"chosen": None, "settings": None, "reason": "The sweep has no rows to choose from."}
    want = _target_text(target) or "no diversity target"
    met = [i for i, r in enumerate(rows) if all(_meets(_value(r, m), m, g) for m, g in target.items())]
    if not met:
        closest = min(range(len(rows)), key=lambda i: (_shortfall(rows[i], target), i))
        got = ", ".join(f"{m} {_shown(_value(rows[closest], m))}" for m in target)
        reason = f"No setting of the {len(rows)} meets {want}; the closest is {label(rows[closest])} ({got})."
        return {"chosen": None, "settings": None, "closest": closest, "reason": reason}
    sign = 1.0 if quality_higher_is_better else -1.0

    def rank(i: int) -> tuple[int, float, int]:
        q = _value(rows[i], quality_key)
        return (q is not None, sign * q if q is not None else 0.0, -i)

    best = max(met, key=rank)
    names = ", ".join(label(rows[i]) for i in met)
    q = _value(rows[best], quality_key)
    why = (
        f"it has the best {quality_key} among them ({fmt(q)}, {'higher' if sign > 0 else 'lower'} is better)"
        if q is not None
        else f"no row meeting it has a {quality_key}, so the first one is taken"
    )
    reason = (
        f"{len(met)} of {len(rows)} settings meet {want} ({names}); {label(rows[best])} is chosen: {why}."
    )
    settings = {k: v for k, v in rows[best].items() if k in SETTING_KEYS}
    return {"chosen": best, "settings": settings, "reason": reason}


def sweep_svg(
    rows: Sequence[Mapping[str, Any]],
    front: Sequence[int],
    diversity_key: str = "distinct_2",
    quality_key: str = "perplexity",
    *,
    chosen: int | None = None,
    quality_higher_is_better: bool = False,
    title: str = "Decoding sweep: quality vs diversity",
    width: int = 560,
    height: int = 360,
) -> str:
    """A self-contained SVG scatter plot: x diversity, y quality, one labelled point per setting, the
    Pareto front as a connected, highlighted line, and the chosen setting ringed."""
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
        f"aria-label='{escape(title)}'><style>text{{font:10px sans-serif;fill:#444}}</style>"
        f"<text x='0' y='11'>{escape(title)}</text>"
    )
    pts = {
        i: (d, q)
        for i, r in enumerate(rows)
        if (d := _value(r, diversity_key)) is not None and (q := _value(r, quality_key)) is not None
    }
    if not pts:
        missing = f"no setting has both {diversity_key} and {quality_key}"
        return head + f"<text x='0' y='30'>{escape(missing)}</text></svg>"
    left, right, top, bottom = 56, 16, 36, 40
    x0, x1, xt = _ticks(min(d for d, _ in pts.values()), max(d for d, _ in pts.values()))
    y0, y1, yt = _ticks(min(q for _, q in pts.values()), max(q for _, q in pts.values()))
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + ph * (1 - (y - y0) / (y1 - y0))

    base, hot, ring = PALETTE[0], PALETTE[3], PALETTE[2]
    parts = [head]
    keys = [(left, "setting", base), (left + 70, "Pareto front", hot)]
    keys += [(left + 170, "chosen", ring)] if chosen is not None and chosen in pts else []
    for x, text, color in keys:
        parts.append(f"<circle cx='{x + 4}' cy='24' r='4' fill='{color}'/>")
        parts.append(f"<text x='{x + 12}' y='27'>{escape(text)}</text>")
    for t, lab in yt:
        parts.append(
            f"<line x1='{left}' x2='{left + pw}' y1='{py(t):.1f}' y2='{py(t):.1f}' stroke='#eee'/>"
            f"<text x='{left - 4}' y='{py(t) + 3:.1f}' text-anchor='end'>{escape(lab)}</text>"
        )
    for t, lab in xt:
        parts.append(
            f"<line x1='{px(t):.1f}' x2='{px(t):.1f}' y1='{top + ph}' y2='{top + ph + 4}' stroke='#999'/>"
            f"<text x='{px(t):.1f}' y='{top + ph + 15}' text-anchor='middle'>{escape(lab)}</text>"
        )
    more = "higher" if _more_diverse_sign(diversity_key) > 0 else "lower"
    better = "higher" if quality_higher_is_better else "lower"
    parts.append(
        f"<line x1='{left}' x2='{left}' y1='{top}' y2='{top + ph}' stroke='#999'/>"
        f"<line x1='{left}' x2='{left + pw}' y1='{top + ph}' y2='{top + ph}' stroke='#999'/>"
        f"<text class='x-title' x='{left + pw / 2:.0f}' y='{height - 6}' text-anchor='middle'>"
        f"{escape(diversity_key)} ({more} is more diverse)</text>"
        f"<text class='y-title' transform='translate(12 {top + ph / 2:.0f}) rotate(-90)' "
        "text-anchor='middle'>"
        f"{escape(quality_key)} ({better} is better)</text>"
    )
    on_front = [i for i in front if i in pts]
    if len(on_front) > 1:
        line = " ".join(
            f"{px(pts[i][0]):.1f},{py(pts[i][1]):.1f}" for i in sorted(on_front, key=lambda i: pts[i])
        )
        parts.append(
            f"<polyline class='pareto-front' fill='none' stroke='{hot}' stroke-width='1.5' points='{line}'/>"
        )
    for i, (d, q) in pts.items():
        cls, color, r = ("front", hot, 5) if i in on_front else ("setting", base, 3.5)
        name = label(rows[i])
        parts.append(
            f"<circle class='{cls}' cx='{px(d):.1f}' cy='{py(q):.1f}' r='{r}' fill='{color}'>"
            f"<title>{escape(name)}: {escape(diversity_key)} {escape(fmt(d))}, "
            f"{escape(quality_key)} {escape(fmt(q))}</title></circle>"
            f"<text x='{px(d) + 6:.1f}' y='{py(q) - 5:.1f}'>{escape(name)}</text>"
        )
    if chosen is not None and chosen in pts:
        d, q = pts[chosen]
        parts.append(
            f"<circle class='chosen' cx='{px(d):.1f}' cy='{py(q):.1f}' r='9' fill='none' stroke='{ring}' "
            f"stroke-width='2'><title>chosen: {escape(label(rows[chosen]))}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
