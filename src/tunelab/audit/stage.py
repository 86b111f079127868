"""The audit stage: counterfactual and group fairness of the fine-tuned model (and of the base, for
comparison), the gates, and the data and model cards, all under ``audit/``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.audit.config import AuditConfig
from tunelab.config import Recipe
from tunelab.runs import (
    RunDir,
    StageResult,
    atomic_dir,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
)
from tunelab.tasks import get_task
from tunelab.tasks.base import MODEL_INFO

AUDITED_TASKS = ("classification", "sft", "lm")


def run(recipe: Recipe, run_dir: RunDir) -> StageResult:
    """Write ``audit/fairness.json``, ``counterfactuals.jsonl``, the two cards and ``index.html``."""
    from tunelab.audit.counterfactual import load_lists
    from tunelab.audit.measure import build_pairs

    cfg: AuditConfig = recipe.section("audit")
    if recipe.task not in AUDITED_TASKS:
        raise ValueError(
            f"the audit covers {', '.join(AUDITED_TASKS)} runs; this run's task is {recipe.task}"
        )
    run_dir.require(f"model/{MODEL_INFO}", "train")
    rows = run_dir.split_rows(cfg.split)[: cfg.max_examples]
    _check_group_column(cfg, rows, run_dir)
    lists = load_lists(cfg.categories, cfg.word_lists)
    texts, continuations = _texts(recipe.task, rows, cfg)
    pairs = build_pairs(texts, lists)
    task = get_task(recipe.task)
    labels = run_dir.labels() if task.has_labels else None
    tuned, tokenizer = task.load_tuned(run_dir.model, recipe, labels)
    fairness: dict[str, Any] = {"split": cfg.split, "n_rows": len(rows), "n_pairs": len(pairs)}
    fairness["categories"] = {c: list(s.groups) for c, s in lists.items()}
    figures, original = _figures(recipe, cfg, tuned, tokenizer, texts, continuations, pairs, labels)
    fairness["counterfactual"] = figures
    del tuned
    fairness["groups"] = None
    if cfg.group_column and labels:
        from tunelab.audit.groups import group_metrics

        fairness["groups"] = group_metrics(
            [str(r["label"]) for r in rows],
            [labels[int(k)] for k in original.argmax(1)],
            [str(r.get(cfg.group_column)) for r in rows],
            labels,
            min_size=cfg.min_group_size,
            bootstrap_samples=cfg.bootstrap_samples,
            confidence=cfg.confidence,
            seed=recipe.run.seed,
        )
    fairness["base"] = None
    if cfg.compare_base and pairs:
        base, base_tok = task.load_base(recipe, labels)
        fairness["base"], _ = _figures(recipe, cfg, base, base_tok, texts, continuations, pairs, labels)
        del base
    from tunelab.audit.gates import check

    fairness["gates"] = check(cfg.gates, figures, fairness["groups"], fairness["base"])
    warnings = [] if pairs else [f"no text of the {cfg.split} split holds a listed term: nothing was swapped"]
    warnings += [
        f"group {g!r} has fewer than {cfg.min_group_size} rows: reported, not gated"
        for g in (fairness["groups"] or {}).get("insufficient", [])
    ]
    fairness["warnings"] = warnings
    _write(recipe, run_dir, fairness, pairs)
    metrics: dict[str, Any] = {"n_pairs": len(pairs), "gates_passed": fairness["gates"]["passed"]}
    for category, fig in figures.items():
        for name in ("flip_rate", "logprob_shift"):
            if isinstance(fig.get(name), dict):
                metrics[f"{name}_{category}"] = fig[name]["value"]
    if not fairness["gates"]["passed"]:
        metrics["gates_failed"] = "; ".join(fairness["gates"]["breaches"])
    if warnings:
        metrics["warnings"] = warnings
    artifacts = [
        f"audit/{n}"
        for n in ("fairness.json", "counterfactuals.jsonl", "data_card.md", "model_card.md", "index.html")
    ]
    return StageResult("audit", metrics=metrics, artifacts=artifacts)


def _check_group_column(cfg: AuditConfig, rows: list[dict], run_dir: RunDir) -> None:
    if cfg.group_column and rows and not any(cfg.group_column in r for r in rows):
        present = sorted({k for r in rows[:50] for k in r})
        raise ValueError(
            f"audit.group_column: {cfg.group_column!r} is not a column of "
            f"{run_dir.data / (cfg.split + '.jsonl')} (it has {', '.join(present)}); keep it from the "
            f"source with data.sources[N].keep: [{cfg.group_column}]"
        )


def _texts(task: str, rows: list[dict], cfg: AuditConfig) -> tuple[list[str], list[str]]:
    """The text each row is audited on and, for causal LMs, the continuation scored after it."""
    if task == "classification":
        return [str(r["text"]) for r in rows], []
    texts, continuations = [], []
    for r in rows:
        messages = r.get("messages")
        if isinstance(messages, list) and messages:
            users = [m["content"] for m in messages if m.get("role") == "user"]
            answers = [m["content"] for m in messages if m.get("role") == "assistant"]
            texts.append(str(users[-1] if users else ""))
            continuations.append(cfg.continuation or str(answers[-1] if answers else ""))
        else:
            words = str(r.get("text", "")).split()
            cut = max(1, len(words) // 2)
            texts.append(" ".join(words[:cut]))
            continuations.append(cfg.continuation or " " + " ".join(words[cut:]))
    return texts, continuations


def _figures(
    recipe, cfg, model, tokenizer, texts, continuations, pairs, labels
) -> tuple[dict[str, Any], np.ndarray]:
    """Counterfactual figures of ``model`` on ``pairs`` and its scores of the original texts."""
    from tunelab.audit import measure

    if not pairs:
        return {}, np.zeros((len(texts), len(labels or [0])))
    if recipe.task == "classification":
        from tunelab.tasks.windows import LongText  # long texts read as in training (model.long_text)

        original, swapped = measure.classifier_scores(
            model, tokenizer, texts, pairs, LongText.of(recipe.model), cfg.batch_size
        )
        return measure.classifier_figures(
            pairs, original, swapped, labels, cfg, recipe.run.seed, cfg.examples
        ), original
    from tunelab.audit.scoring import continuation_logprob

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    all_prompts = [*texts, *(p.swapped for p in pairs)]
    all_conts = [*continuations, *(continuations[p.row] for p in pairs)]
    scores = continuation_logprob(model, tokenizer, all_prompts, all_conts, batch_size=cfg.batch_size)
    original, swapped = scores[: len(texts)], scores[len(texts) :]
    return measure.causal_figures(
        pairs, original, swapped, continuations, cfg, recipe.run.seed, cfg.examples
    ), original


def _write(recipe: Recipe, run_dir: RunDir, fairness: dict[str, Any], pairs) -> None:
    from tunelab.audit.cards import data_card, model_card
    from tunelab.audit.page import render

    with atomic_dir(run_dir.path("audit")) as tmp:
        atomic_write_json(tmp / "fairness.json", fairness)
        atomic_write_jsonl(
            tmp / "counterfactuals.jsonl",
            [
                {
                    "row": p.row,
                    "category": p.category,
                    "from": p.source_group,
                    "to": p.target_group,
                    "original": p.original,
                    "swapped": p.swapped,
                }
                for p in pairs
            ],
        )
        atomic_write_text(tmp / "data_card.md", data_card(recipe, run_dir))
        atomic_write_text(tmp / "model_card.md", model_card(recipe, run_dir, fairness))
        atomic_write_text(tmp / "index.html", render(fairness, f"Fairness audit: {recipe.run.name}"))


def inputs(recipe: Recipe) -> dict[str, Any]:
    """The train and evaluate records: the cards quote the trained model's test figures."""
    from tunelab.pipeline import trained_model

    rec = RunDir(recipe.run_dir_path()).stage_record("evaluate") or {}
    return {**trained_model(recipe), "evaluated": [rec.get("fingerprint"), rec.get("run_id")]}
