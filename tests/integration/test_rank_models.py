"""``tunelab rank-models``: candidates scored on a sample of the run's data, ranked, with their cost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from tests.helpers import classification_recipe, sentiment_rows, sft_recipe, write_jsonl

from tunelab.cli.main import main
from tunelab.config import validate_recipe
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir
from tunelab.search.ranking import rank_models
from tunelab.tasks import get_task


def prepared(raw: dict):
    recipe = validate_recipe(raw)
    run_stage("data", recipe)
    return recipe, RunDir(recipe.run_dir_path())


def test_cli_ranks_candidates_and_writes_the_json(tiny_bert, tmp_path, capsys):
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(200))
    raw = classification_recipe(tiny_bert, data, tmp_path / "runs")
    raw["search"] = {"rank_train_rows": 60, "rank_eval_rows": 20}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    missing = tmp_path / "no-such-model"
    assert main(["rank-models", str(path), "--candidates", f"{tiny_bert},{missing}"]) == 0
    out = capsys.readouterr().out
    assert "probe_accuracy" in out and "tokens/s" in out and "parameters" in out
    ranking = json.loads((tmp_path / "runs/cls/metrics/model_ranking.json").read_text())
    assert ranking["metric"] == "probe_accuracy" and ranking["higher_is_better"]
    assert ranking["train_rows"] == 60 and ranking["eval_rows"] == 20
    first, last = ranking["candidates"]
    assert first["name"] == str(tiny_bert) and first["rank"] == 1 and first["error"] is None
    assert 0.0 <= first["score"] <= 1.0 and first["tokens_per_s"] > 0
    assert 10_000 < first["parameters"] < 100_000  # a 2-layer, hidden-32 BERT
    assert last["rank"] == 2 and last["score"] is None and "does not exist" in last["error"]


def test_no_candidate_scored_is_an_error_that_lists_each(tiny_bert, tmp_path):
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(200))
    recipe, run_dir = prepared(classification_recipe(tiny_bert, data, tmp_path / "runs"))
    with pytest.raises(ValueError, match=r"no candidate could be scored:\n  ./nope: FileNotFoundError"):
        rank_models(recipe, run_dir, ["./nope"])


def test_causal_lms_are_ranked_by_answer_perplexity(tiny_llama, tmp_path):
    from tests.helpers import qa_rows

    data = write_jsonl(tmp_path / "qa.jsonl", qa_rows(120))
    recipe, run_dir = prepared(sft_recipe(tiny_llama, data, tmp_path / "runs"))
    ranking = rank_models(recipe, run_dir, [str(tiny_llama)])
    (entry,) = ranking["candidates"]
    assert ranking["metric"] == "perplexity" and not ranking["higher_is_better"]
    assert entry["error"] is None and 1.0 < entry["score"] < 10 * 500  # a random model: near the vocab size
    assert (run_dir.metrics / "model_ranking.json").is_file()


def test_each_task_says_how_its_candidates_are_ranked():
    assert get_task("classification").rank_metric == "probe_accuracy"
    assert get_task("sft").rank_metric == "perplexity"


@pytest.mark.slow
def test_minilm_outranks_a_random_tiny_bert_on_rotten_tomatoes(tiny_bert: Path, tmp_path):
    raw = {
        "run": {"name": "rank", "output_dir": str(tmp_path / "runs"), "seed": 42},
        "data": {"sources": [{"bundled": "rotten_tomatoes", "max_rows": 1600}], "labels": ["fresh", "rotten"],
                 "split": {"validation": 0.25, "test": 0.05}},
        "model": {"name": "minilm", "max_length": 64},
        "search": {"candidates": [str(tiny_bert), "minilm"], "rank_train_rows": 800, "rank_eval_rows": 300},
    }
    recipe, run_dir = prepared(raw)
    start = time.perf_counter()
    ranking = rank_models(recipe, run_dir)
    seconds = time.perf_counter() - start
    best, weak = ranking["candidates"]
    assert best["name"] == "minilm" and weak["name"] == str(tiny_bert)
    assert best["score"] >= weak["score"] + 0.08, ranking  # here: about 0.72 vs 0.58 (the majority label)
    assert best["score"] > 0.65 and best["parameters"] > 20_000_000 > weak["parameters"]
    print(f"rank-models: minilm {best['score']:.3f} vs tiny {weak['score']:.3f} in {seconds:.0f}s")
