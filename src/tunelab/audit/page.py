"""``audit/index.html``: the gates, counterfactual figures per category (tuned beside base), the
most affected swaps, and group metrics, on one self-contained page."""

from __future__ import annotations

from typing import Any

from tunelab import html as h


def _iv(fig: Any) -> str:
    if not isinstance(fig, dict) or fig.get("value") is None:
        return "-"
    low, high = fig.get("low"), fig.get("high")
    band = f" [{h.fmt(low, 3)}, {h.fmt(high, 3)}]" if low is not None and high is not None else ""
    return f"{h.fmt(fig['value'], 3)}{band}"


def render(fairness: dict[str, Any], title: str) -> str:
    gates = fairness.get("gates") or {}
    parts = [
        h.cards(
            [
                ("passed" if gates.get("passed") else "FAILED", "gates"),
                (fairness.get("n_rows", 0), f"{fairness.get('split', '')} rows"),
                (fairness.get("n_pairs", 0), "swapped texts"),
            ]
        )
    ]
    parts += [h.notice(b) for b in gates.get("breaches", [])]
    if gates.get("passed"):
        parts.append(h.notice(f"{len(gates.get('checked', []))} gate checks passed", "ok"))
    parts += [h.notice(w, "info") for w in fairness.get("warnings", [])]
    cf, base = fairness.get("counterfactual") or {}, fairness.get("base") or {}
    rows = []
    for category, fig in cf.items():
        name = "flip_rate" if "flip_rate" in fig else "logprob_shift"
        second = "mean_shift" if name == "flip_rate" else None
        rows.append(
            [
                category,
                fig.get("n_pairs"),
                name.replace("_", " "),
                _iv(fig.get(name)),
                _iv((base.get(category) or {}).get(name)),
                _iv(fig.get(second)) if second else "-",
            ]
        )
    body = h.table(
        ["category", "swaps", "figure", "fine-tuned", "base", "mean |prob shift|"], rows, numeric=[1]
    )
    chart = {
        c: (fig.get("flip_rate") or fig.get("logprob_shift") or {}).get("value") for c, fig in cf.items()
    }
    sections = [
        h.section("Counterfactual swaps", h.row(body, h.bar_chart(chart, title="by category")), id="cf")
    ]
    examples = [
        [c, e["groups"], e["original"], e["swapped"], _change(e)]
        for c, fig in cf.items()
        for e in fig.get("examples", [])[:5]
    ]
    if examples:
        sections.append(
            h.section(
                "Most affected",
                h.table(["category", "swap", "original", "swapped", "change"], examples),
                id="worst",
            )
        )
    groups = fairness.get("groups")
    if groups:
        g_rows = [[g, groups["sizes"].get(g), _iv(fig)] for g, fig in groups.get("accuracy", {}).items()]
        g_rows += [
            [g, n, "insufficient (not gated)"]
            for g, n in groups["sizes"].items()
            if g in groups.get("insufficient", [])
        ]
        text = (
            f"demographic parity difference {h.fmt(groups.get('demographic_parity_difference'), 3)}, "
            f"equalized odds difference {h.fmt(groups.get('equalized_odds_difference'), 3)}"
        )
        sections.append(
            h.section(
                "Groups",
                h.paragraph(text) + h.table(["group", "rows", "accuracy"], g_rows, numeric=[1]),
                id="groups",
            )
        )
    cards = "<p><a href='data_card.md'>data card</a> · <a href='model_card.md'>model card</a></p>"
    sections.append(h.section("Cards", cards, id="cards"))
    nav = [("cf", "Counterfactual"), ("worst", "Most affected"), ("groups", "Groups"), ("cards", "Cards")]
    return h.page(title, "".join(parts + sections), nav=nav)


def _change(e: dict[str, Any]) -> str:
    if "predicted" in e:
        return (
            f"{e['predicted']} {e['probability']:.2f} -> {e['predicted_after']} {e['probability_after']:.2f}"
        )
    return f"log p {e['logprob']:.2f} -> {e['logprob_after']:.2f}"
