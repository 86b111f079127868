"""A hand-written run directory with every artifact the report reads, in the shapes the stages write.

``build(root, stages=..., text=...)`` writes the outputs of the chosen stages only (and their
manifest records); ``text`` is put into every free-text field a run can carry, so a test can pass
markup and check it comes out escaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ALL = ("data", "train", "evaluate", "explain", "generate", "export", "audit")
EVIL = "<script>alert('x')</script> & \"q\""


def _json(root: Path, rel: str, obj: Any) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


def _jsonl(root: Path, rel: str, rows: list[dict]) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _fig(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": value, "low": low, "high": high, "confidence": 0.95, "bootstrap_samples": 50}


def record(i: int, summary: dict | None = None) -> dict[str, Any]:
    return {
        "status": "done",
        "started": f"2026-01-01T10:0{i}:00+00:00",
        "finished": f"2026-01-01T10:0{i}:30+00:00",
        "seconds": 1.5 + i,
        "fingerprint": f"fp{i:014d}",
        "run_id": f"id{i:010d}",
        "summary": summary or {},
    }


def build(root: Path, stages: tuple[str, ...] = ALL, text: str = "plain text") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    records = {}
    (root / "recipe.yaml").write_text(
        "run: {name: fake, output_dir: runs, seed: 7}\ntask: classification\n"
        "model: {name: minilm, adapter: {method: lora}}\n",
        encoding="utf-8",
    )
    writers = {
        "data": _data,
        "train": _train,
        "evaluate": _evaluate,
        "explain": _explain,
        "generate": _generate,
        "export": _export,
        "audit": _audit,
    }
    for i, stage in enumerate(stages):
        writers[stage](root, text)
        records[stage] = record(i, {"headline": 0.5, "note": text})
    manifest = {
        "created": "2026-01-01T10:00:00+00:00",
        "environment": {
            "python": "3.11.7",
            "platform": "Linux",
            "versions": {"tunelab": "0.1.0", "torch": "2.3.0", "peft": None},
            "git_commit": "abc123",
        },
        "stages": records,
        "inputs": {"/data/reviews.jsonl": "e25cea5c" * 8, "trained_model": ["fp1", "id1"]},
        "seed": 7,
        "task": "classification",
        "model": "minilm",
    }
    _json(root, "manifest.json", manifest)
    return root


def _data(root: Path, text: str) -> None:
    _json(
        root,
        "data/data_report.json",
        {
            "summary": {
                "rows_read": 250,
                "rows_kept": 240,
                "rows_quarantined": 10,
                "reconciles": True,
                "train_rows": 192,
                "validation_rows": 24,
                "test_rows": 24,
                "exact_duplicates": 6,
                "near_duplicates": 2,
                "leakage_pairs": 0,
                "labels": ["neg", "pos"],
            },
            "task": "labelled",
            "removed_by_step": {"exact_dedup": 6, "length": 4},
            "top_reasons": {"exact_dedup": [["duplicate of <row>", 6]], "length": [[text, 4]]},
            "splits": {
                "train": {"rows": 192, "labels": {"neg": 96, "pos": 96}, "groups": 0},
                "validation": {"rows": 24, "labels": {"neg": 12, "pos": 12}, "groups": 0},
                "test": {"rows": 24, "labels": {"neg": 12, "pos": 12}, "groups": 0},
            },
            "warnings": [f"a warning: {text}"],
            "lengths": {"unit": "words", "train": {"count": 192, "mean": 7.8, "p95": 11, "max": 11}},
        },
    )
    (root / "data" / "data_report.html").write_text("<html></html>", encoding="utf-8")


def _train(root: Path, text: str) -> None:
    log = [
        {"step": s, "epoch": s / 12, "loss": 0.7 - s / 100, "lr": 0.003 * (1 - s / 24)} for s in (4, 8, 12)
    ]
    log.append({"step": 12, "validation": {"loss": 0.6, "accuracy": 0.7, "macro_f1": 0.68}})
    log += [
        {"step": s, "epoch": s / 12, "loss": 0.5 - s / 100, "lr": 0.003 * (1 - s / 24)} for s in (16, 20, 24)
    ]
    log.append({"step": 24, "validation": {"loss": 0.4, "accuracy": 0.8, "macro_f1": 0.79}})
    _jsonl(root, "metrics/train_log.jsonl", log)
    _json(
        root,
        "metrics/train_summary.json",
        {
            "best_metric": {"accuracy": 0.8, "step": 24},
            "final_validation": {"loss": 0.4, "accuracy": 0.8},
            "steps": 24,
            "seconds": 3.2,
            "train_tokens_per_s": 8196.7,
            "precision": "fp32",
            "parameters": {"trainable": 30914, "total": 30914},
            "resumed_from_step": None,
            "stopped": None,
        },
    )


def _evaluate(root: Path, text: str) -> None:
    _json(
        root,
        "metrics/eval.json",
        {
            "split": "test",
            "loss": 0.45,
            "n_examples": 24,
            "labels": ["neg", text],
            "accuracy": _fig(0.8333, 0.7, 0.95),
            "macro_f1": _fig(0.83, 0.69, 0.94),
            "per_class": {"neg": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 12}},
            "confusion_matrix": [[11, 1], [3, 9]],
            "ece": 0.05,
        },
    )
    preds = [
        {
            "text": f"{text} {i}",
            "label": "pos" if i % 2 else "neg",
            "predicted": "pos",
            "probability": 0.5 + i / 50,
        }
        for i in range(24)
    ]
    _jsonl(root, "metrics/predictions.jsonl", preds)
    _json(
        root,
        "metrics/comparison.json",
        {
            "split": "test",
            "n_examples": 24,
            "metrics": {
                "accuracy": {
                    "base": _fig(0.5, 0.3, 0.7),
                    "tuned": _fig(0.8333, 0.7, 0.95),
                    "delta": 0.3333,
                    "improved": True,
                    "higher_is_better": True,
                }
            },
            "paired_difference": {"accuracy": {**_fig(0.33, 0.1, 0.5), "prob_b_better": 0.99}},
            "note": f"base note: {text}",
        },
    )


def _explain(root: Path, text: str) -> None:
    examples = []
    for i in range(8):
        words = ["the", "film", "was", "brilliant", text]
        scores = [0.01, -0.02, 0.0, 0.5, 0.1]
        examples.append(
            {
                "index": i,
                "source": "random",
                "row": i,
                "text": " ".join(words),
                "words": words,
                "tokens": ["[CLS]", *words, "[SEP]"],
                "prediction": {
                    "label": "pos",
                    "probs": {"neg": 0.1, "pos": 0.9},
                    "gold": "neg" if i == 1 else "pos",
                },
                "methods": {
                    "occlusion": {"words": scores, "tokens": [0, *scores, 0]},
                    "saliency": {"words": [abs(s) for s in scores]},
                },
            }
        )
    _jsonl(root, "explain/examples.jsonl", examples)
    _json(
        root,
        "explain/faithfulness.json",
        {
            "methods": {
                "occlusion": {"comprehensiveness": 0.3, "sufficiency": 0.05, "beats_random": 1.0},
                "saliency": {"comprehensiveness": 0.1, "sufficiency": 0.2, "beats_random": 0.5},
                "random": {"comprehensiveness": 0.02, "sufficiency": 0.3},
            }
        },
    )
    top = [{"word": w, "score": s, "count": 3} for w, s in (("brilliant", 0.4), (text, 0.2), ("film", 0.05))]
    _json(
        root,
        "explain/global.json",
        {
            "method": "occlusion",
            "ranking": "mean * log1p(count)",
            "labels": {"pos": {"n_examples": 20, "top": top}},
        },
    )
    _json(root, "explain/rules.json", {"fidelity": 0.92, "majority_fidelity": 0.5, "rules": []})
    (root / "explain" / "index.html").write_text("<html></html>", encoding="utf-8")


def _generate(root: Path, text: str) -> None:
    rows = [
        {
            "prompt": f"prompt {i}: {text}",
            "reference": "it is 9 .",
            "samples": [{"text": f"sample {i} {text}"}],
        }
        for i in range(8)
    ]
    _jsonl(root, "generate/samples.jsonl", rows)
    _json(
        root,
        "generate/diversity.json",
        {
            "within": {"distinct_1": 0.7, "distinct_2": 0.9, "self_bleu": None},
            "across": {"distinct_1": 0.6, "distinct_2": 0.91, "self_bleu": 0.08},
            "quality": {"perplexity": 573.5, "perplexity_model": "base", "rouge_l": 0.24},
            "tokens_per_s": 1383.0,
        },
    )
    sweep_rows = [
        {"temperature": t, "top_p": p, "distinct_2": 0.5 + t / 3, "perplexity": 900 - t * 200, "rouge_l": 0.3}
        for t in (0.3, 1.0)
        for p in (0.9, 1.0)
    ]
    _json(
        root,
        "generate/sweep.json",
        {
            "rows": sweep_rows,
            "pareto_front": [2],
            "target": {"chosen": 2, "reason": f"chosen because {text}"},
        },
    )


def _export(root: Path, text: str) -> None:
    (root / "export" / "model").mkdir(parents=True, exist_ok=True)
    (root / "export" / "model" / "model.safetensors").write_bytes(b"\0" * 3000)
    (root / "export" / "model" / "config.json").write_text("{}", encoding="utf-8")
    _json(
        root,
        "export/manifest.json",
        {
            "task": "classification",
            "base_model": "minilm",
            "adapter": "lora",
            "created": "2026-01-01T10:05:00Z",
            "settings": {"dtype": "auto", "quantize": "int8", "gguf_types": ["f16", "q8_0"]},
            "evaluation": {"accuracy": _fig(0.8333, 0.7, 0.95)},
            "verify": {
                "merge": {"max_logit_diff": 8.4e-06},
                "int8": {"change": {"loss": 0.001}, "speedup": 1.4, "bytes": {"int8_file": 105192}},
                "gguf": [{"type": "f16", "prompts": 3, "identical": 3}],
            },
            "files": {
                "model/model.safetensors": "ab" * 32,
                "model/config.json": "cd" * 32,
                "int8/gone.bin": "ef" * 32,
            },
        },
    )


def _audit(root: Path, text: str) -> None:
    _json(
        root,
        "audit/fairness.json",
        {
            "split": "test",
            "n_rows": 24,
            "n_pairs": 30,
            "counterfactual": {
                "gender": {
                    "flip_rate": _fig(0.1, 0.0, 0.2),
                    "mean_shift": _fig(0.03, 0.01, 0.05),
                    "n_pairs": 20,
                },
                text: {"flip_rate": _fig(0.0, 0.0, 0.0), "n_pairs": 10},
            },
            "base": {"gender": {"flip_rate": _fig(0.05, 0.0, 0.1)}},
            "groups": {
                "sizes": {"a": 12, "b": 12},
                "accuracy": {"a": _fig(0.8, 0.6, 0.9), "b": _fig(0.7, 0.5, 0.9)},
                "demographic_parity_difference": 0.12,
                "equalized_odds_difference": 0.2,
                "insufficient": [],
            },
            "gates": {
                "passed": False,
                "breaches": [f"flip rate too high: {text}"],
                "checked": ["flip_rate[gender]"],
            },
            "warnings": [],
        },
    )
    (root / "audit" / "data_card.md").write_text(
        f"# Data card: fake\n\n## Sources\n\n- reviews (license: unknown)\n- {text}\n\n"
        "| split | rows |\n|---|---|\n| train | 192 |\n",
        encoding="utf-8",
    )
    (root / "audit" / "model_card.md").write_text(
        "---\nbase_model: minilm\ntags:\n- tunelab\n---\n\n"
        "# fake\n\nA **classification** model, `code` here.\n\n"
        f"## Fairness\n\n- gates: FAILED: {text}\n",
        encoding="utf-8",
    )
