"""``prompts compare`` for a run: its templates, its model and its validation split."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tunelab.config import Recipe
from tunelab.generate.model import load_writer
from tunelab.pipeline import open_run, run_stage
from tunelab.runs import atomic_write_json


def compare_for_run(
    recipe: Recipe, *, base: bool = False, n: int | None = None
) -> tuple[dict[str, Any], Path]:
    """Score ``generate.compare`` (or the one prompt) on validation; write generate/prompts_compare.json."""
    from tunelab.generate.compare import compare_templates
    from tunelab.models.decoding import generate

    cfg = recipe.section("generate")
    templates = cfg.compare or [cfg.prompt]
    run_stage("data", recipe)  # skips itself when the splits are current
    run_dir = open_run(recipe)
    rows = run_dir.split_rows("validation")
    if n is not None:
        rows = rows if len(rows) <= n else random.Random(recipe.run.seed).sample(rows, n)
    writer = load_writer(recipe, run_dir, base=base)
    greedy = cfg.decoding.model_copy(update={"temperature": 0.0, "num_samples": 1})

    def generate_fn(prompt_ids: list[list[int]]) -> list[str]:
        groups, _ = generate(
            writer.model,
            writer.tokenizer,
            prompt_ids,
            greedy,
            batch_size=cfg.batch_size,
            seed=recipe.run.seed,
            precision=writer.precision,
        )
        return [g[0].text for g in groups]

    labels = run_dir.labels() if recipe.task == "classification" else None
    result = compare_templates(
        writer.model,
        writer.tokenizer,
        templates,
        rows,
        task=recipe.task,
        labels=labels,
        train_rows=run_dir.split_rows("train"),
        seed=recipe.run.seed,
        batch_size=cfg.batch_size,
        precision=writer.precision,
        generate_fn=generate_fn if recipe.task != "classification" else None,
    )
    result["model"] = writer.which
    path = run_dir.path("generate", "prompts_compare.json")
    atomic_write_json(path, result)
    return result, path
