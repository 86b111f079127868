"""What a search leaves in ``<run_dir>/search/``: trials.csv, plots.html, best_recipe.yaml, summary.json."""

from __future__ import annotations

import csv
import io
import shutil
import warnings
from typing import Any

from tunelab.config import Recipe, dump_recipe
from tunelab.runs import RunDir, atomic_write_json, atomic_write_text
from tunelab.search.space import decode, with_params
from tunelab.search.study import objective, search_config, search_dir, storage_url, study_name
from tunelab.search.trial import trial_dir

UNFINISHED = ("RUNNING", "WAITING")  # another worker may still be using these folders
ATTRS = (
    "worker",
    "recipe_default",
    "steps",
    "best_step",
    "train_seconds",
    "pruned_at_validation",
    "run_dir",
    "error",
)


def write_reports(study: Any, recipe: Recipe, run_dir: RunDir) -> dict[str, Any]:
    """Write every search artifact from the study's storage (so all workers' trials are included)."""
    folder = search_dir(run_dir)
    trials = study.get_trials(deepcopy=False)
    metric, direction = objective(recipe)
    atomic_write_text(folder / "trials.csv", trials_csv(trials, list(search_config(recipe).space)))
    best = _best(study)
    default = next((t for t in trials if t.user_attrs.get("recipe_default")), None)
    summary: dict[str, Any] = {
        "study_name": study_name(recipe),
        "storage": _without_password(storage_url(recipe, run_dir)),
        "metric": metric,
        "direction": direction,
        "trials": _count_states(trials),
        "default": _trial_summary(default, recipe),
        "best": _trial_summary(best, recipe),
        "plots": write_plots(study, folder / "plots.html"),
        "files": ["search/trials.csv", "search/summary.json"],
    }
    if best is not None:
        tuned = with_params(recipe, decode(search_config(recipe), best.params), "best trial")
        header = (
            f"# best trial {best.number} of study {summary['study_name']!r}: validation {metric} = "
            f"{best.value:.6g}\n# `tunelab run` this file to train the winner in the recipe's run folder\n"
        )
        atomic_write_text(folder / "best_recipe.yaml", header + dump_recipe(tuned))
        summary["files"].append("search/best_recipe.yaml")
    if summary["plots"]:
        summary["files"].append("search/plots.html")
    _prune_models(trials, best, run_dir, search_config(recipe).keep_models)
    atomic_write_json(folder / "summary.json", summary)
    return summary


def trials_csv(trials: list[Any], keys: list[str]) -> str:
    """One row per trial: number, state, value, each searched key, and the trial's bookkeeping."""
    out = io.StringIO()
    columns = ["number", "state", "value", "seconds", *keys, *ATTRS]
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for t in trials:
        seconds = t.duration.total_seconds() if t.duration is not None else None
        row = {"number": t.number, "state": t.state.name, "value": t.value, "seconds": seconds}
        writer.writerow({**row, **t.params, **t.user_attrs})
    return out.getvalue()


def write_plots(study: Any, path) -> list[str]:
    """Optimisation history, intermediate values and parameter importances in one offline HTML page."""
    import optuna

    if not optuna.visualization.is_available():
        return []  # plotly is missing; the summary lists no plots (pip install plotly)
    vis = optuna.visualization
    figures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks some plots experimental
        for name, make in (
            ("optimization history", vis.plot_optimization_history),
            ("intermediate values", vis.plot_intermediate_values),
            ("parameter importances", vis.plot_param_importances),
        ):
            try:
                figures.append((name, make(study)))
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue  # e.g. importances need two finished trials with different values
    if not figures:
        return []
    # plotly.js once, inline: the page works offline and stays one file
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, (_, fig) in enumerate(figures)]
    body = "\n".join(f"<h2>{name}</h2>\n{part}" for (name, _), part in zip(figures, parts, strict=True))
    atomic_write_text(
        path,
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>search: "
        f"{study.study_name}</title></head><body>\n{body}\n</body></html>\n",
    )
    return [name for name, _ in figures]


def _best(study: Any) -> Any | None:
    try:
        return study.best_trial
    except ValueError:  # no trial completed
        return None


def _trial_summary(t: Any | None, recipe: Recipe) -> dict[str, Any] | None:
    if t is None:
        return None
    params = decode(search_config(recipe), t.params)
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": params,
        "run_dir": t.user_attrs.get("run_dir"),
    }


def _count_states(trials: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return counts


def _prune_models(trials: list[Any], best: Any | None, run_dir: RunDir, keep: str) -> None:
    """Drop the model/ folders that ``search.keep_models`` does not keep (finished trials only)."""
    if keep == "all":
        return
    for t in trials:
        if t.state.name not in UNFINISHED and (keep == "none" or best is None or t.number != best.number):
            shutil.rmtree(trial_dir(run_dir, t.number).model, ignore_errors=True)


def _without_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (e.g. a journal file): nothing to hide
        return url
