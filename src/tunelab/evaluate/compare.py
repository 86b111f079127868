"""Side-by-side figures (base, TF-IDF baseline, tuned), paired intervals, and the plain verdict.

``verdict`` answers "was fine-tuning worth it?" on the task's first headline metric: the tuned
model beats the baseline only when the whole paired interval of the difference lies on its side.
"""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe
from tunelab.metrics.registry import Predictions, get_metric, higher_is_better, paired_difference

BEATS, WITHIN_NOISE, BEHIND = "beats", "within_noise", "behind"
BASELINE_NAME = "TF-IDF baseline"


def columns(
    names: list[str],
    tuned: dict[str, Any],
    base: dict[str, Any] | None = None,
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Per metric: ``tuned``; with ``base``: ``base``, ``delta``, ``improved``; with ``baseline``:
    ``baseline``, ``delta_vs_baseline``, ``beats_baseline`` (the point estimate is better)."""
    rows: dict[str, Any] = {}
    for name in names:
        if name not in tuned:
            continue
        higher = higher_is_better(name)
        t = _value(tuned[name])
        row: dict[str, Any] = {}
        if base is not None and name in base:
            b = _value(base[name])
            row.update(base=base[name], tuned=tuned[name], delta=t - b, improved=t > b if higher else t < b)
        if baseline is not None and name in baseline:
            s = _value(baseline[name])
            row.update(
                baseline=baseline[name],
                tuned=tuned[name],
                delta_vs_baseline=t - s,
                beats_baseline=t > s if higher else t < s,
            )
        if row:
            rows[name] = {**row, "higher_is_better": higher}
    return rows


def paired(names: list[str], a: Predictions, b: Predictions, recipe: Recipe) -> dict[str, Any]:
    """``b - a`` per metric on the same rows, both resampled together (a paired bootstrap)."""
    ev = recipe.evaluate
    return {
        name: paired_difference(name, a, b, ev.bootstrap_samples, ev.confidence, recipe.run.seed)
        for name in names
        if get_metric(name).fn is not None and len(a) == len(b)
    }


def verdict(name: str, difference: dict[str, Any], confidence: float) -> dict[str, Any]:
    """The outcome (beats / within_noise / behind) and its sentence from a paired baseline->tuned
    difference (``a`` = baseline, ``b`` = tuned, ``value`` = tuned - baseline, ``low``/``high``)."""
    higher = higher_is_better(name)
    diff, low, high = difference["value"], difference.get("low"), difference.get("high")
    sign = 1.0 if higher else -1.0
    gain = sign * diff  # > 0: the tuned model is better
    has_interval = low is not None and high is not None
    worst_gain = min(sign * low, sign * high) if has_interval else None
    if gain > 0 and (worst_gain is None or worst_gain > 0):
        outcome, head = BEATS, f"fine-tuning beats the {BASELINE_NAME}"
    elif gain > 0:
        outcome = WITHIN_NOISE
        head = f"fine-tuning is ahead of the {BASELINE_NAME} but within noise (CI crosses 0)"
    else:
        outcome, head = BEHIND, f"fine-tuning does NOT beat the {BASELINE_NAME}"
    level = f"{100 * confidence:g}% CI"
    no_interval = ", no interval (bootstrap_samples 0)"
    spread = f", {level} {_signed(low)}..{_signed(high)}" if has_interval else no_interval
    direction = "" if higher else "; lower is better"
    sentence = (
        f"{head}: {name} {_num(difference['b'])} vs {_num(difference['a'])} "
        f"({_signed(diff)}{spread}{direction})"
    )
    return {
        "metric": name,
        "higher_is_better": higher,
        "tuned": difference["b"],
        "baseline": difference["a"],
        "difference": difference,
        "outcome": outcome,
        "beats_baseline": outcome == BEATS,
        "sentence": sentence,
    }


def verdict_metric(task_headline: tuple[str, ...], paired_rows: dict[str, Any]) -> str | None:
    """The task's first headline metric with a paired interval, else the first metric that has one."""
    for name in (*task_headline, *paired_rows):
        if name in paired_rows:
            return name
    return None


def _num(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:.4g}"


def _signed(x: float) -> str:
    return f"{x:+.3f}" if abs(x) < 1000 else f"{x:+.4g}"


def _value(x: Any) -> float:
    return float(x["value"]) if isinstance(x, dict) else float(x)
