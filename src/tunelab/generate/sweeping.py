"""The decoding sweep inside the generate stage: every temperature x top-p (x min-p) setting on the
same prompts, scored for diversity and quality; the Pareto front; the setting for a diversity target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import Recipe
from tunelab.generate.model import Writer
from tunelab.runs import atomic_write_json, atomic_write_text


def sweep(
    recipe: Recipe, writer: Writer, judge: Writer, prompts, references, folder: Path, metrics: dict[str, Any]
) -> list[str]:
    """Write ``sweep.json`` and ``sweep.svg``; add the chosen setting to ``metrics``."""
    from tunelab.generate.stage import sample, score
    from tunelab.generate.sweep import choose_for_target, grid, pareto_front, run_sweep, sweep_svg

    cfg = recipe.section("generate")
    sw = cfg.sweep
    chosen_prompts = prompts[: sw.prompts]
    chosen_refs = references[: sw.prompts]
    seed = recipe.run.seed if cfg.decoding.seed is None else cfg.decoding.seed

    def generate_fn(overrides: dict[str, Any]):
        decoding = cfg.decoding.model_copy(update=overrides)
        groups, _ = sample(writer, chosen_prompts, decoding, cfg.batch_size, seed, num_samples=sw.num_samples)
        generate_fn.groups = groups  # the score function needs token ids, not just texts
        return [[s.text for s in g] for g in groups]

    def score_fn(_texts) -> dict[str, Any]:
        figures = score(recipe, judge, chosen_prompts, generate_fn.groups, chosen_refs)
        return {**figures["within"], **figures["quality"]}

    settings = grid(sw)
    rows = run_sweep(generate_fn, score_fn, settings)
    front = pareto_front(rows, diversity_key="distinct_2", quality_key="perplexity")
    result: dict[str, Any] = {"settings": settings, "rows": rows, "pareto_front": front}
    if cfg.diversity_target:
        result["target"] = choose_for_target(rows, cfg.diversity_target, quality_key="perplexity")
        metrics["target_setting"] = result["target"].get("settings")
    atomic_write_json(folder / "sweep.json", result)
    chosen = (result.get("target") or {}).get("chosen")
    atomic_write_text(folder / "sweep.svg", sweep_svg(rows, front, "distinct_2", "perplexity", chosen=chosen))
    return ["generate/sweep.json", "generate/sweep.svg"]
