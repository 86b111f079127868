"""Synthetic data inside the generate stage: seeds, the writer, the classifier that checks labels,
provenance, and the files the data stage reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import Recipe
from tunelab.generate.model import Writer, load_classifier
from tunelab.runs import RunDir, read_jsonl


def synthesize_for_run(
    recipe: Recipe, run_dir: RunDir, writer: Writer, train: list[dict], folder: Path, metrics: dict[str, Any]
) -> list[str]:
    """Write ``synthetic.jsonl``, ``synthetic_report.json`` and the synthetic data card."""
    from tunelab.generate.prompts import template_hash
    from tunelab.generate.synthetic import protected_texts, resolve_kind, synthesize, write
    from tunelab.models.decoding import generate

    cfg = recipe.section("generate")
    sc = cfg.synthetic
    kind = resolve_kind(sc.kind, recipe.task)
    seeds = read_jsonl(Path(sc.seeds)) if sc.seeds else train
    protected = protected_texts([r for split in ("validation", "test") for r in run_dir.split_rows(split)])
    seed = recipe.run.seed if sc.decoding.seed is None else sc.decoding.seed
    tok = writer.tokenizer

    def generate_fn(prompts: list[str], round_index: int) -> list[str]:
        ids = [_render(tok, p) for p in prompts]
        groups, _ = generate(
            writer.model,
            tok,
            ids,
            sc.decoding,
            batch_size=cfg.batch_size,
            seed=seed + round_index,
            precision=writer.precision,
            num_samples=1,
        )
        return [g[0].text for g in groups]

    classify_fn = None
    labels = run_dir.labels() if kind == "labeled" else None
    if kind == "labeled" and sc.check_label:
        found = load_classifier(recipe, run_dir)
        if found is None:
            raise ValueError(
                "generate.synthetic.check_label: the run has no trained classifier; train it first "
                "or set check_label: false"
            )
        classify_fn = _classifier(found, labels, recipe)
    provenance = {
        "model": writer.name,
        "which": writer.which,
        "adapter_hash": writer.adapter_hash,
        "template_hash": template_hash(cfg.prompt) if sc.template is None else _hash(sc.template),
        "decoding": sc.decoding.settings(),
        "seed": seed,
    }
    result = synthesize(
        sc,
        kind=kind,
        seeds=seeds,
        generate_fn=generate_fn,
        protected=protected,
        labels=labels,
        classify_fn=classify_fn,
        provenance=provenance,
        seed=seed,
        template=sc.template,
    )
    write(result, folder)
    metrics["synthetic_rows"] = len(result.rows)
    metrics["synthetic_complete"] = result.report["complete"]
    if not result.report["complete"]:
        metrics.setdefault("warnings", []).append(f"synthetic data: {result.report['reason']}")
    return ["generate/synthetic.jsonl", "generate/synthetic_report.json", "generate/synthetic_card.md"]


def _render(tokenizer, prompt: str) -> list[int]:
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def _classifier(found, labels: list[str], recipe: Recipe):
    import torch

    _, model, tokenizer = found

    def classify(texts: list[str]) -> list[str]:
        enc = tokenizer(
            texts, truncation=True, max_length=recipe.model.max_length, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            logits = model(**{k: v.to(next(model.parameters()).device) for k, v in enc.items()}).logits
        return [labels[i] for i in logits.argmax(-1).tolist()]

    return classify


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]
