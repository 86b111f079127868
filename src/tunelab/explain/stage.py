"""The explain stage: every method on each chosen example, faithfulness beside it, the split-level
analyses (global importance, surrogate rules, layers) and one page, all under ``explain/``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.config import Recipe
from tunelab.explain.choose import from_split, given
from tunelab.explain.context import Context, load_context
from tunelab.explain.faithfulness import example_faithfulness, summarise
from tunelab.explain.registry import Attribution, Method, get_method
from tunelab.explain.subject import Subject
from tunelab.runs import RunDir, StageResult, atomic_dir

log = logging.getLogger("tunelab.explain")
SPLITS = ("train", "validation", "test")  # the splits the data stage writes
ATTENTION_EXAMPLES = 3  # examples whose full attention maps go into attention.json and the page
ARTIFACTS = (
    "examples.jsonl",
    "global.json",
    "rules.txt",
    "rules.json",
    "layers.json",
    "faithfulness.json",
    "attention.json",
    "index.html",
)


def run(
    recipe: Recipe,
    run_dir: RunDir,
    *,
    text: list[str] | None = None,
    split: str | None = None,
    n: int | None = None,
    base: bool = False,
) -> StageResult:
    """Explain the run's model (or the base model) and write ``explain/``."""
    cfg = recipe.section("explain")
    if n is not None and n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    split = split or cfg.split
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: explain reads one of {', '.join(SPLITS)}")
    rows = run_dir.split_rows(split)
    ctx = load_context(recipe, run_dir, base=base)
    methods, skipped = usable_methods(ctx, cfg.methods)
    subjects = given(ctx, [*cfg.texts, *(text or [])], cfg.answers)
    subjects += from_split(ctx, rows, (n or cfg.n) - len(subjects) if not text else 0, cfg.select)
    if not subjects:
        raise ValueError(f"nothing to explain: the {split} split is empty and no --text was given")
    records, word_scores, faith, timing = explain_all(ctx, subjects, methods)
    from tunelab.explain.analyses import global_view, layer_view, rules_view

    notes = _notes(ctx, subjects, skipped)
    payload: dict[str, Any] = {
        "title": f"Explanations: {recipe.run.name}",
        "run": recipe.run.name,
        "model": ctx.which,
        "kind": ctx.kind,
        "labels": ctx.labels,
        "split": split,
        "methods": [m.name for m in methods if m.attribution],
        "skipped": skipped,
        "examples": records,
        "attention": _attention(records),
        "faithfulness": _faithfulness(ctx, faith, word_scores) if cfg.faithfulness else None,
        "timing": {k: float(np.mean(v)) for k, v in timing.items()},
        "global": global_view(ctx, rows, notes),
        "layers": layer_view(ctx, recipe, run_dir, subjects, notes),
    }
    payload["rules"], payload["rules_text"] = rules_view(ctx, run_dir, rows, notes)
    payload["notes"] = notes
    payload["warnings"] = _warnings(subjects, records, ctx.warnings)
    _write(run_dir.path("explain"), payload)
    return StageResult("explain", metrics=_headline(payload), artifacts=[f"explain/{a}" for a in ARTIFACTS])


def usable_methods(ctx: Context, names: list[str]) -> tuple[list[Method], dict[str, str]]:
    """The methods that apply to this model kind, and why any other was left out."""
    methods, skipped = [], {}
    for name in names:
        m = get_method(name)
        if ctx.kind not in m.kinds:
            skipped[name] = f"explains {' and '.join(m.kinds)} models, not a {ctx.kind}"
        else:
            methods.append(m)
    return methods, skipped


def explain_all(ctx: Context, subjects: list[Subject], methods: list[Method]):
    """Run every method on every subject; returns records, word scores, faithfulness and timings."""
    from tqdm.auto import tqdm

    records, all_words, faith = [], [], []
    timing: dict[str, list[float]] = {}
    for i, subject in enumerate(tqdm(subjects, desc="explain", unit="example", leave=False)):
        subject.meta["show_attention"] = i < ATTENTION_EXAMPLES
        results: dict[str, Attribution] = {}
        errors: dict[str, str] = {}
        for m in methods:
            try:
                results[m.name] = m.fn(ctx, subject)
            except ImportError:
                raise
            except Exception as exc:  # one method failing on one example must not lose the others
                log.warning("%s failed on example %d: %s", m.name, i, exc)
                errors[m.name] = f"{type(exc).__name__}: {exc}"
        for name, a in results.items():
            timing.setdefault(name, []).append(a.seconds)
        scores = {
            n: subject.word_scores(a.token_scores) for n, a in results.items() if get_method(n).attribution
        }
        faithful = example_faithfulness(ctx, subject, scores) if ctx.cfg.faithfulness else {}
        all_words.append(scores)
        faith.append(faithful)
        records.append(record(ctx, i, subject, results, scores, faithful, errors))
    return records, all_words, faith, timing


def record(
    ctx: Context,
    index: int,
    subject: Subject,
    results: dict[str, Attribution],
    scores: dict[str, np.ndarray],
    faithful: dict[str, Any],
    errors: dict[str, str],
) -> dict[str, Any]:
    """One line of ``examples.jsonl``."""
    out: dict[str, Any] = {
        "index": index,
        "source": subject.meta.get("source"),
        "row": subject.meta.get("row"),
        **subject.to_json(),
    }
    if ctx.kind == "classifier":
        probs = subject.meta["probs"]
        out["prediction"] = {
            "label": ctx.labels[subject.target],
            "target": subject.target,
            "probs": {lab: round(float(p), 6) for lab, p in zip(ctx.labels, probs, strict=False)},
            "gold": subject.meta.get("gold"),
        }
    else:
        lp = ctx.predictor.answer_logprobs([subject.prompt_ids], subject.answer_ids)[0]
        out["answer"] = {
            "text": subject.answer,
            "tokens": subject.tokens[subject.n_prompt :],
            "logprob": float(lp.sum()),
            "source": subject.meta.get("answer_source"),
        }
    out["methods"] = {}
    for name, a in results.items():
        info = dict(a.info)
        if name == "attention":
            out["attention"] = {
                k: info.pop(k) for k in ("maps", "rollout", "shape", "tokens_shown") if k in info
            }
        if "per_answer_token" in info:
            out.setdefault("per_answer_token", info.pop("per_answer_token"))
        out["methods"][name] = {
            "tokens": np.round(a.token_scores, 6).tolist(),
            "words": np.round(scores[name], 6).tolist() if name in scores else None,
            "seconds": round(a.seconds, 4),
            "info": info,
        }
    out["faithfulness"] = faithful
    out["errors"] = errors
    return out


def _attention(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    shown = []
    for r in records:
        att = r.pop("attention", None)
        if att is not None and len(shown) < ATTENTION_EXAMPLES:
            shown.append({"index": r["index"], "tokens": r["tokens"][: att["tokens_shown"]], **att})
    return {"examples": shown} if shown else None


def _faithfulness(ctx: Context, faith: list[dict], word_scores: list[dict]) -> dict[str, Any]:
    out = summarise([f for f in faith if f], word_scores)
    out["fractions"] = ctx.cfg.fractions
    out["units"] = (
        "log-probability (nats)"
        if ctx.kind == "causal"
        else "model output"
        if ctx.predictor.output == "identity"
        else "probability"
    )
    return out


def _notes(ctx: Context, subjects: list[Subject], skipped: dict[str, str]) -> list[str]:
    notes = list(ctx.notes)
    cut = sum(s.truncated for s in subjects)
    if cut:
        notes.append(
            f"{cut} of {len(subjects)} texts were longer than model.max_length ({ctx.max_length} tokens) and "
            "are explained on the part the model reads"
        )
    notes += [f"{name} skipped: {why}" for name, why in skipped.items()]
    if ctx.which == "base":
        notes.append("these explanations are of the base model (--base), not the fine-tuned one")
    return notes


def _warnings(subjects: list[Subject], records: list[dict[str, Any]], extra: list[str] = ()) -> list[str]:
    """What a person should know before trusting the page: cut texts, skipped rows, methods that
    failed, and budgets too small for their scores to mean much."""
    out = []
    cut = sum(s.truncated for s in subjects)
    if cut:
        out.append(f"{cut} of {len(subjects)} explained texts were truncated to model.max_length")
    out += list(extra)
    failed: dict[str, int] = {}
    budget: dict[str, list[str]] = {}
    for r in records:
        for name in r["errors"]:
            failed[name] = failed.get(name, 0) + 1
        for name, m in r["methods"].items():
            if m["info"].get("warning"):
                budget.setdefault(name, []).append(m["info"]["warning"])
    out += [f"{name} failed on {k} example(s); see explain/examples.jsonl" for name, k in failed.items()]
    out += [f"{name} on {len(w)} example(s): {w[0]}" for name, w in budget.items()]
    return out


def _headline(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"examples": len(payload["examples"]), "warnings": payload["warnings"]}
    faith = (payload.get("faithfulness") or {}).get("methods") or {}
    ranked = sorted((m for m in faith if m != "random"), key=lambda m: -faith[m]["comprehensiveness"])
    if ranked:
        out["most_faithful"] = ranked[0]
        out["comprehensiveness"] = round(faith[ranked[0]]["comprehensiveness"], 4)
        out["random_comprehensiveness"] = round(faith["random"]["comprehensiveness"], 4)
    rules = payload.get("rules")
    if rules:
        out["rules_fidelity"] = round(rules["fidelity"], 4)
    return out


def _write(folder: Path, payload: dict[str, Any]) -> None:
    """Every artifact into a temporary folder that replaces ``explain/`` in one rename."""
    import json

    from tunelab.explain.page import render_page

    def dump(obj: Any) -> str:
        return json.dumps(obj, indent=2, ensure_ascii=False, default=_jsonable) + "\n"

    with atomic_dir(folder) as tmp:
        lines = "".join(
            json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n" for r in payload["examples"]
        )
        (tmp / "examples.jsonl").write_text(lines, encoding="utf-8")
        (tmp / "global.json").write_text(dump(payload["global"]), encoding="utf-8")
        (tmp / "rules.json").write_text(dump(payload["rules"]), encoding="utf-8")
        (tmp / "rules.txt").write_text(
            (payload["rules_text"] or "no rules: see notes") + "\n", encoding="utf-8"
        )
        (tmp / "layers.json").write_text(dump(payload["layers"]), encoding="utf-8")
        (tmp / "faithfulness.json").write_text(dump(payload["faithfulness"]), encoding="utf-8")
        compact = json.dumps(payload["attention"], separators=(",", ":"), default=_jsonable)  # nested maps
        (tmp / "attention.json").write_text(compact + "\n", encoding="utf-8")
        started = time.perf_counter()
        (tmp / "index.html").write_text(render_page(payload), encoding="utf-8")
        log.debug("page rendered in %.2f s", time.perf_counter() - started)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
