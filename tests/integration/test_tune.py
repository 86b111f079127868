"""``tunelab tune``: trials on the parent's data, pruning, the results it writes, workers sharing one
SQLite study, and (slow) a real search on MiniLM / Rotten Tomatoes whose reported best is its best trial."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

from tunelab.cli.main import main
from tunelab.config import load_recipe, validate_recipe
from tunelab.pipeline import run_stage
from tunelab.search import tune

ROOT = Path(__file__).resolve().parents[2]
SPACE = {
    "train.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "train.batch_size": {"type": "categorical", "choices": [8, 16]},
    # whole mappings are choices too: full fine-tuning or a LoRA adapter
    "model.adapter": {"type": "categorical", "choices": [
        {"method": "none"}, {"method": "lora", "r": 4, "alpha": 8, "target_modules": "all-linear"}]},
}


class OddTrialsPruner(optuna.pruners.BasePruner):
    """Prunes odd-numbered trials at their first report: pruning is checked without luck."""

    def prune(self, study, trial) -> bool:
        return trial.number % 2 == 1


def odd_trials_pruner(cfg) -> OddTrialsPruner:
    return OddTrialsPruner()


def tiny_recipe(tiny_bert: Path, tmp: Path, **search) -> dict:
    data = write_jsonl(tmp / "reviews.jsonl", sentiment_rows(160))
    raw = classification_recipe(tiny_bert, data, tmp / "runs", epochs=2, eval_every=4, num_threads=1)
    raw["search"] = {"space": SPACE, "n_trials": 4, **search}
    return raw


def read_trials(run: Path) -> list[dict[str, str]]:
    with (run / "search/trials.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def searched(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tune")
    raw = tiny_recipe(tiny_bert, tmp, pruner={"name": f"{__name__}:odd_trials_pruner"})
    recipe = validate_recipe(raw)
    summary = tune(recipe)
    return recipe, recipe.run_dir_path(), summary


def test_search_writes_its_results(searched):
    _, run, summary = searched
    for rel in ("search/trials.csv", "search/summary.json", "search/best_recipe.yaml", "search/plots.html",
                "search/study.db", "data/train.jsonl"):
        assert (run / rel).is_file(), rel
    assert summary["trials"] == {"complete": 2, "pruned": 2}
    assert json.loads((run / "search/summary.json").read_text())["best"] == summary["best"]
    html = (run / "search/plots.html").read_text()
    assert "optimization history" in html and "plotly" in html and "<script src=" not in html  # offline
    assert not list(run.rglob("*.tmp"))


def test_trial_zero_is_the_recipe_and_best_is_the_best_recorded_trial(searched):
    recipe, run, summary = searched
    rows = read_trials(run)
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "COMPLETE", "PRUNED"]
    zero = rows[0]
    assert zero["recipe_default"] == "True"
    assert float(zero["train.learning_rate"]) == recipe.train.learning_rate
    assert int(zero["train.batch_size"]) == recipe.train.batch_size
    assert json.loads(zero["model.adapter"]) == {"method": "none"}  # the choice that is the recipe's own
    assert_best_is_the_best_row(run, summary, rows, SPACE, higher=True)


def assert_best_is_the_best_row(run: Path, summary: dict, rows: list[dict[str, str]], keys, higher: bool):
    """The reported best is the trial of trials.csv with the best value (max or min over the completed
    rows, worked out here), and best_recipe.yaml holds exactly that trial's parameters."""
    completed = [r for r in rows if r["state"] == "COMPLETE"]
    assert len(completed) >= 2, "the check needs trials to choose from"
    pick = max if higher else min
    best_row = pick(completed, key=lambda r: float(r["value"]))
    assert summary["best"]["number"] == int(best_row["number"])
    assert summary["best"]["value"] == float(best_row["value"]) == pick(float(r["value"]) for r in completed)
    best = load_recipe(run / "search/best_recipe.yaml")
    for key in keys:
        section, field = key.split(".", 1)
        got, text = getattr(getattr(best, section), field), best_row[key]
        if hasattr(got, "model_dump"):  # a whole mapping was the choice
            chosen, dumped = json.loads(text), got.model_dump(mode="json")
            assert {k: dumped[k] for k in chosen} == chosen, key
        else:
            assert got == type(got)(text), key


def test_pruned_trials_stop_early_and_say_so(searched):
    _, run, _ = searched
    for r in read_trials(run):
        log = (run / r["run_dir"] / "metrics/train_log.jsonl").read_text()
        if r["state"] == "PRUNED":
            assert r["pruned_at_validation"] == "1" and int(r["steps"]) == 4
            assert "pruned by the search at validation 1" in log
        else:
            assert int(r["steps"]) > 4 and "stopped" not in log


def test_trials_share_the_parents_data_and_keep_only_the_best_model(searched):
    _, run, summary = searched
    for n in range(4):
        trial = run / f"search/trial-{n}"
        assert (trial / "data").resolve() == (run / "data").resolve()
        assert (trial / "metrics/train_summary.json").is_file() and not (trial / "checkpoints").exists()
        assert (trial / "model").exists() == (n == summary["best"]["number"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["search"]["status"] == "done"


def test_best_recipe_loads_and_carries_the_best_values(searched):
    recipe, run, summary = searched
    best = load_recipe(run / "search/best_recipe.yaml")
    assert best.run == recipe.run and best.data == recipe.data
    assert best.train.learning_rate == summary["best"]["params"]["train.learning_rate"]
    assert best.train.batch_size == summary["best"]["params"]["train.batch_size"]
    assert best.model.adapter.method == summary["best"]["params"]["model.adapter"]["method"]


def test_rerunning_a_finished_search_adds_no_trial(searched):
    recipe, run, _ = searched
    before = len(read_trials(run))
    tune(recipe)
    assert len(read_trials(run)) == before


def test_two_worker_processes_share_one_sqlite_study(tiny_bert, tmp_path):
    raw = tiny_recipe(tiny_bert, tmp_path, n_trials=6, pruner={"name": "none"})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    recipe = load_recipe(path)
    run_stage("data", recipe)  # as a user would before starting workers in two shells
    cmd = [sys.executable, "-m", "tunelab.cli.main", "tune", str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    run = recipe.run_dir_path()
    study = optuna.load_study(study_name="cls", storage=f"sqlite:///{run / 'search/study.db'}")
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 6
    # Which process starts first (and so how the trials split between them) is up to the OS: one
    # may even finish them all. What must hold either way: every trial in the one study belongs to
    # one of the two processes, none is counted twice, and the recipe's own trial runs once.
    workers = {t.user_attrs["worker"] for t in trials}
    pids = {f":{p.pid}" for p in procs}
    assert {w[w.rindex(":"):] for w in workers} <= pids, "every trial was run by one of the two processes"
    assert len({t.number for t in trials}) == len(trials)
    assert sum(t.user_attrs.get("recipe_default", False) for t in trials) == 1
    assert {r["worker"] for r in read_trials(run)} == workers  # the report lists every worker's trials
    print(f"two workers: {len(trials)} trials in {time.perf_counter() - start:.1f}s")


def test_workers_option_starts_helpers_that_join(tiny_bert, tmp_path):
    # eight trials: this process alone needs longer for them than a helper needs to start
    raw = tiny_recipe(tiny_bert, tmp_path, n_trials=8, pruner={"name": "none"})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["tune", str(path), "--workers", "2"]) == 0
    run = validate_recipe(raw).run_dir_path()
    rows = read_trials(run)
    assert len({r["worker"] for r in rows}) == 2 and len(rows) >= 8
    assert (run / "search/worker-1.log").is_file()


def test_cli_reports_a_bad_space_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "run": {"output_dir": str(tmp_path / "runs")},
        "data": {"sources": [{"bundled": "rotten_tomatoes"}]},
        "search": {"space": {"train.warmup_ratio": {"type": "float", "low": 0.0, "high": 1.0}}},
    }))
    assert main(["tune", str(path)]) == 2
    err = capsys.readouterr().err
    assert "search.space.train.warmup_ratio: the value 1.0 makes an invalid recipe" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists(), "nothing runs before the check"
    path.write_text(yaml.safe_dump({"data": {"sources": [{"bundled": "rotten_tomatoes"}]}}))
    assert main(["tune", str(path)]) == 1
    assert "search.space is empty" in capsys.readouterr().err


MINILM_SPACE = {
    "train.learning_rate": {"type": "float", "low": 3e-5, "high": 1e-3, "log": True},
    "train.batch_size": {"type": "categorical", "choices": [8, 16]},
    "train.warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
}


@pytest.mark.slow
def test_minilm_search_on_rotten_tomatoes_reports_its_best_trial(tmp_path):
    """A real search: the reported best is the trial with the lowest validation loss in trials.csv and
    best_recipe.yaml holds its parameters (trial 0, the recipe itself, is one of the candidates)."""
    recipe = validate_recipe({
        "run": {"name": "rt-search", "output_dir": str(tmp_path / "runs"), "seed": 42},
        "data": {"sources": [{"bundled": "rotten_tomatoes", "max_rows": 600}], "labels": ["fresh", "rotten"],
                 "split": {"validation": 0.2, "test": 0.05}},
        "model": {"name": "minilm", "max_length": 32},  # snippets: median 18 words
        # One thread: CPUs shared with other jobs lose far more to oversubscription than they gain.
        # Validation loss, not accuracy: twelve steps rarely move accuracy off the majority label.
        "train": {"max_steps": 12, "batch_size": 16, "learning_rate": 1e-4, "eval_every": 6,
                  "metric_for_best": "loss", "num_threads": 1},
        "search": {"space": MINILM_SPACE, "n_trials": 6, "pruner": {"startup_trials": 3}},
    })
    start = time.perf_counter()
    summary = tune(recipe)
    seconds = time.perf_counter() - start
    run = recipe.run_dir_path()
    rows = read_trials(run)
    assert len(rows) == 6 and summary["default"]["number"] == 0
    assert float(rows[0]["train.learning_rate"]) == 1e-4 and rows[0]["train.batch_size"] == "16"
    assert summary["direction"] == "minimize" and summary["metric"] == "loss"
    assert_best_is_the_best_row(run, summary, rows, MINILM_SPACE, higher=False)
    print(f"minilm search: default {float(rows[0]['value']):.3f}, best {summary['best']['value']:.3f}, "
          f"{summary['trials']}, {seconds:.0f}s")
