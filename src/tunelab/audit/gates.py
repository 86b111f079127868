"""Gates: the audit's thresholds checked against its figures, each breach said in words.

A breach names the figure, the category or class, the value, and the recipe key of the gate, so a
CI log says what stopped the model. Figures with no value (an insufficient group) are not gated.
"""

from __future__ import annotations

from typing import Any

from tunelab.audit.config import GateConfig


def check(
    gates: GateConfig,
    counterfactual: dict[str, Any],
    groups: dict[str, Any] | None,
    base: dict[str, Any] | None,
) -> dict[str, Any]:
    """``{"passed", "breaches", "checked"}`` of the tuned model's figures (the base's: for regression)."""
    breaches: list[str] = []
    checked: list[str] = []
    for figure in ("flip_rate", "mean_shift", "logprob_shift"):
        limit = getattr(gates, figure)
        for category, fig in counterfactual.items():
            value = _value(fig.get(figure))
            if value is None:
                continue
            if limit is not None:
                checked.append(f"{figure}[{category}]")
                if value > limit:
                    breaches.append(
                        f"counterfactual {figure.replace('_', ' ')} {value:.3f} for {category} exceeds "
                        f"audit.gates.{figure}={limit}"
                    )
            before = _value(((base or {}).get(category) or {}).get(figure))
            if gates.regression is not None and before is not None:
                checked.append(f"regression[{figure}][{category}]")
                if value - before > gates.regression:
                    breaches.append(
                        f"fine-tuning made the {figure.replace('_', ' ')} for {category} worse: {before:.3f} "
                        f"(base) -> {value:.3f}, more than audit.gates.regression={gates.regression}"
                    )
    for figure in ("parity_difference", "equalized_odds_difference"):
        limit = getattr(gates, figure)
        key = "demographic_parity_difference" if figure == "parity_difference" else figure
        value = None if groups is None else groups.get(key)
        if limit is None or value is None:
            continue
        checked.append(figure)
        if value > limit:
            breaches.append(f"group {key.replace('_', ' ')} {value:.3f} exceeds audit.gates.{figure}={limit}")
    return {"passed": not breaches, "breaches": breaches, "checked": checked}


def _value(fig: Any) -> float | None:
    if isinstance(fig, dict):
        fig = fig.get("value")
    return float(fig) if isinstance(fig, int | float) else None
