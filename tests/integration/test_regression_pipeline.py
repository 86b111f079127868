"""A whole regression run on a tiny BERT: quarantine, learning, loading without tunelab, ranking."""

from __future__ import annotations

import json

import pytest
import torch
from tests.helpers import regression_recipe, run_without_tunelab, scored_rows, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline
from tunelab.runs import RunDir, read_jsonl
from tunelab.search.ranking import rank_models
from tunelab.tasks import get_task


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reg")
    rows = scored_rows(240)
    rows[5]["label"] = "abc"  # not a number: quarantined with its reason
    rows[6]["label"] = " 0.75 "  # a numeric string: kept, as a float
    data = write_jsonl(tmp / "scores.jsonl", rows)
    recipe = validate_recipe(regression_recipe(tiny_bert, data, tmp / "runs", epochs=6))
    results = run_pipeline(recipe)
    return recipe, recipe.run_dir_path(), results


def test_data_keeps_floats_and_quarantines_what_is_not_a_number(finished_run):
    _, run, results = finished_run
    assert [r.stage for r in results] == ["data", "train", "evaluate"]
    (bad,) = read_jsonl(run / "data/quarantine.jsonl")
    assert bad["step"] == "format" and bad["row"]["label"] == "abc"
    assert bad["reason"] == "label 'abc' is not a number (regression) (column 'label')"
    kept = [r for s in ("train", "validation", "test") for r in read_jsonl(run / f"data/{s}.jsonl")]
    assert len(kept) == 239 and all(isinstance(r["label"], float) for r in kept)
    assert 0.75 in {r["label"] for r in kept}
    assert not (run / "data/labels.json").exists()
    report = json.loads((run / "data/data_report.json").read_text())
    assert report["summary"]["labels"] is None and report["splits"]["train"]["labels"] == {}
    assert set(report["splits"]["test"]["label_values"]) == {"count", "min", "mean", "max"}


def test_tuned_model_beats_base(finished_run):
    _, run, _ = finished_run
    comparison = json.loads((run / "metrics/comparison.json").read_text())
    m = comparison["metrics"]
    assert set(m) == {"mae", "rmse", "r2", "pearson", "spearman"}
    assert m["r2"]["improved"] and m["rmse"]["improved"] and m["mae"]["improved"]
    assert m["r2"]["tuned"]["value"] > 0.5 and not m["rmse"]["higher_is_better"]
    assert comparison["paired_difference"]["rmse"]["value"] < 0
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["rmse"]["low"] <= ev["rmse"]["value"] <= ev["rmse"]["high"]
    preds = read_jsonl(run / "metrics/predictions.jsonl")
    assert len(preds) == ev["n_examples"] and {"text", "target", "prediction"} <= set(preds[0])
    summary = json.loads((run / "metrics/train_summary.json").read_text())
    assert "rmse" in summary["best_metric"]


def test_plain_transformers_loads_the_model_and_agrees(finished_run):
    recipe, run, _ = finished_run
    texts = [r["text"] for r in read_jsonl(run / "data/test.jsonl")[:8]]
    script = f"""
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(run / "model")!r})
model = AutoModelForSequenceClassification.from_pretrained({str(run / "model")!r}).eval()
assert model.config.problem_type == "regression" and model.config.num_labels == 1
with torch.no_grad():
    enc = tok(json.loads(sys.stdin.read()), padding=True, truncation=True, max_length=32, return_tensors="pt")
    print(json.dumps(model(**enc).logits.tolist()))
"""
    plain = torch.tensor(run_without_tunelab(script, texts))
    model, tok = get_task("regression").load_tuned(run / "model", recipe, None)
    with torch.no_grad():
        ours = model(**tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")).logits
    torch.testing.assert_close(ours, plain, atol=1e-5, rtol=1e-4)


def test_rank_models_scores_a_ridge_probe(finished_run, tiny_bert):
    recipe, run, _ = finished_run
    ranking = rank_models(recipe, RunDir(run), [str(tiny_bert)])
    (entry,) = ranking["candidates"]
    assert ranking["metric"] == "probe_r2" and ranking["higher_is_better"]
    assert entry["error"] is None and entry["score"] <= 1.0 and entry["rank"] == 1
