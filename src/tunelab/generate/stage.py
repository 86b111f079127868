"""The generate stage: samples for the split's prompts with their diversity and quality, the decoding
sweep, and synthetic data, all under ``generate/``."""

from __future__ import annotations

import random
from typing import Any

from tunelab.config import Recipe
from tunelab.generate.model import Writer, load_base_writer, load_writer
from tunelab.runs import RunDir, StageResult, atomic_write_json, atomic_write_jsonl, atomic_write_text


def run(recipe: Recipe, run_dir: RunDir, *, base: bool = False, n: int | None = None) -> StageResult:
    """Write ``generate/samples.jsonl`` and ``diversity.json`` (and the sweep and synthetic data when on)."""
    cfg = recipe.section("generate")
    if n is not None and n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    rows = _sample(run_dir.split_rows(cfg.split), n or cfg.n_prompts, recipe.run.seed)
    writer = load_writer(recipe, run_dir, base=base)
    folder = run_dir.path("generate")
    artifacts: list[str] = []
    metrics: dict[str, Any] = {"model": writer.which}
    train = run_dir.split_rows("train")
    if recipe.task in ("sft", "lm"):  # a classification run's prompts are not questions to answer
        prompts, references, shots = prepare_prompts(recipe, writer, rows, train)
        judge = load_base_writer(recipe, writer)  # scores every output's perplexity: loaded once
        groups, stats = sample(writer, prompts, cfg.decoding, cfg.batch_size, _seed(recipe, cfg.decoding))
        figures = score(recipe, judge, prompts, groups, references)
        atomic_write_jsonl(folder / "samples.jsonl", sample_rows(prompts, groups, references, shots))
        atomic_write_json(
            folder / "diversity.json", {**figures, "decoding": cfg.decoding.settings(), **stats}
        )
        artifacts += ["generate/samples.jsonl", "generate/diversity.json"]
        metrics.update({k: figures["within"].get(k) for k in ("distinct_2", "self_bleu")})
        metrics["tokens_per_s"] = round(stats["tokens_per_s"], 1)
        if cfg.sweep.enabled:
            from tunelab.generate.sweeping import sweep

            artifacts += sweep(recipe, writer, judge, prompts, references, folder, metrics)
    if cfg.synthetic.enabled:
        from tunelab.generate.synthesis import synthesize_for_run

        artifacts += synthesize_for_run(recipe, run_dir, writer, train, folder, metrics)
    if not artifacts:
        raise ValueError(
            f"nothing to generate for a {recipe.task} run: enable generate.synthetic "
            "(labeled texts per class)"
        )
    from tunelab.generate.page import render

    atomic_write_text(folder / "index.html", render(folder, f"Generation: {recipe.run.name}"))
    artifacts.append("generate/index.html")
    return StageResult("generate", metrics=metrics, artifacts=artifacts)


def prepare_prompts(recipe: Recipe, writer: Writer, rows: list[dict], train: list[dict]):
    """Each row's rendered prompt, its reference answer and the few-shot examples (from train) it shows."""
    from tunelab.generate.prompts import cached_embed, few_shot, pairs, render

    cfg = recipe.section("generate").prompt
    pool = [dict(zip(("input", "output"), pairs(r), strict=True)) for r in train]
    prompts, references, used = [], [], []
    embed = cached_embed()  # "similar" few-shot embeds the train rows once, not once per prompt
    for i, row in enumerate(rows):
        query, reference = pairs(row)
        fs = cfg.few_shot
        shots = few_shot(pool, query, fs.k, fs.strategy, recipe.run.seed + i, embed=embed) if fs.k else []
        prompts.append(render(cfg, writer.tokenizer, query, examples=shots))
        references.append(reference or None)
        used.append([ex["input"] for ex in shots])
    return prompts, references, used


def sample(writer: Writer, prompts, decoding, batch_size: int, seed: int, num_samples: int | None = None):
    """Samples per prompt (texts) and the generation stats."""
    from tunelab.models.decoding import generate

    got, stats = generate(
        writer.model,
        writer.tokenizer,
        [p.ids for p in prompts],
        decoding,
        batch_size=batch_size,
        seed=seed,
        precision=writer.precision,
        num_samples=num_samples,
    )
    return got, stats


def score(recipe: Recipe, judge: Writer, prompts, groups, references) -> dict[str, Any]:
    """Diversity within each prompt's samples and across all, and quality: perplexity of the outputs
    under the base model and ROUGE-L against the references where the data has them."""
    from tunelab.generate.metrics import per_prompt_diversity, perplexity, rouge_l_mean

    texts = [[s.text for s in g] for g in groups]
    out = per_prompt_diversity(texts)
    flat_prompts = [p.ids for p, g in zip(prompts, groups, strict=True) for _ in g]
    flat_outputs = [s.token_ids for g in groups for s in g]
    out["quality"] = {
        "perplexity": perplexity(
            judge.model,
            judge.pad_id,
            flat_prompts,
            flat_outputs,
            batch_size=recipe.section("generate").batch_size,
            precision=judge.precision,
        ),
        "perplexity_model": judge.which,
    }
    refs = [(g[0].text, r) for g, r in zip(groups, references, strict=True) if r]
    if refs:
        out["quality"]["rouge_l"] = rouge_l_mean([a for a, _ in refs], [r for _, r in refs])
    return out


def sample_rows(prompts, groups, references, shots) -> list[dict[str, Any]]:
    return [
        {
            "prompt": p.user,
            "few_shot": examples,
            "reference": ref,
            "samples": [
                {"text": s.text, "n_tokens": s.n_tokens, "finish_reason": s.finish_reason} for s in g
            ],
        }
        for p, g, ref, examples in zip(prompts, groups, references, shots, strict=True)
    ]


def _seed(recipe: Recipe, decoding) -> int:
    return recipe.run.seed if decoding.seed is None else decoding.seed


def _sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    return rows if len(rows) <= n else random.Random(seed).sample(rows, n)
