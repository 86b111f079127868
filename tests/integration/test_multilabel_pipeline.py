"""A whole multilabel run on a tiny BERT from list labels (JSONL) and delimited ones (CSV)."""

from __future__ import annotations

import json

import pytest
import torch
from tests.helpers import multilabel_recipe, run_without_tunelab, tagged_rows, write_csv, write_jsonl

from tunelab.batching import eval_batches
from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline
from tunelab.runs import RunDir, read_jsonl
from tunelab.search.ranking import rank_models
from tunelab.tasks import get_task
from tunelab.tasks.multilabel import THRESHOLD_GRID

LABELS = ["downbeat", "question", "upbeat"]


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tags")
    lists = write_jsonl(tmp / "tags.jsonl", tagged_rows(120, seed=0))
    joined = tagged_rows(120, seed=1, delimiter="|")
    joined[0]["label"] = " | "  # nothing between the delimiters: an empty label set
    for i, r in enumerate(joined):
        r["text"] += f" b{i}"  # the other file's texts, not its duplicates
    delimited = write_csv(tmp / "tags.csv", joined)
    raw = multilabel_recipe(tiny_bert, lists, tmp / "runs", delimiter="|", epochs=8)
    raw["data"]["sources"].append({"path": str(delimited)})
    recipe = validate_recipe(raw)
    return recipe, recipe.run_dir_path(), run_pipeline(recipe)


def test_both_label_forms_become_sorted_lists(finished_run):
    _, run, results = finished_run
    assert [r.stage for r in results] == ["data", "train", "evaluate"]
    assert json.loads((run / "data/labels.json").read_text())["labels"] == LABELS
    rows = read_jsonl(run / "data/train.jsonl")
    assert {r["source"].split(":")[0].rsplit(".", 1)[-1] for r in rows} == {"jsonl", "csv"}
    assert all(isinstance(r["label"], list) and r["label"] == sorted(set(r["label"])) for r in rows)
    assert any(len(r["label"]) > 1 for r in rows)
    (empty,) = read_jsonl(run / "data/quarantine.jsonl")
    assert empty["reason"] == "empty label set (column 'label')"
    report = json.loads((run / "data/data_report.json").read_text())
    dist = report["splits"]["train"]["labels"]
    assert set(dist) == set(LABELS) and sum(dist.values()) == sum(len(r["label"]) for r in rows)


def test_tuned_model_beats_base_at_its_tuned_threshold(finished_run):
    _, run, _ = finished_run
    comparison = json.loads((run / "metrics/comparison.json").read_text())
    m = comparison["metrics"]
    assert set(m) == {"micro_f1", "macro_f1", "subset_accuracy"}
    # A random 2-layer BERT pools through [CLS]: it learns the tags well, not perfectly, in seconds.
    assert m["micro_f1"]["improved"]
    assert m["micro_f1"]["tuned"]["value"] >= 0.7 > m["micro_f1"]["base"]["value"]
    assert m["macro_f1"]["improved"]
    assert comparison["paired_difference"]["micro_f1"]["low"] > 0  # the gain is not resampling luck
    info = json.loads((run / "model/tunelab_model.json").read_text())
    assert info["threshold"] in THRESHOLD_GRID and info["labels"] == LABELS
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["threshold"] == info["threshold"] and set(ev["per_label"]) == set(LABELS)
    preds = read_jsonl(run / "metrics/predictions.jsonl")
    assert len(preds) == ev["n_examples"]
    assert {"text", "labels", "predicted", "probabilities"} <= set(preds[0])
    exact = sum(p["predicted"] == p["labels"] for p in preds) / len(preds)
    assert exact == pytest.approx(ev["subset_accuracy"]["value"])


def test_plain_transformers_loads_the_model_and_agrees(finished_run):
    recipe, run, _ = finished_run
    rows = read_jsonl(run / "data/test.jsonl")[:8]
    texts = [r["text"] for r in rows]
    script = f"""
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(run / "model")!r})
model = AutoModelForSequenceClassification.from_pretrained({str(run / "model")!r}).eval()
assert model.config.problem_type == "multi_label_classification"
assert [model.config.id2label[i] for i in range(model.config.num_labels)] == {LABELS!r}
with torch.no_grad():
    enc = tok(json.loads(sys.stdin.read()), padding=True, truncation=True, max_length=32, return_tensors="pt")
    print(json.dumps(model(**enc).logits.tolist()))
"""
    plain = torch.tensor(run_without_tunelab(script, texts))
    task = get_task("multilabel")
    model, tok = task.load_tuned(run / "model", recipe, LABELS)
    with torch.no_grad():
        ours = model(**tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")).logits
    torch.testing.assert_close(ours, plain, atol=1e-5, rtol=1e-4)
    _, preds = task.predict(model, eval_batches(task.encode(rows, tok, recipe, LABELS), task, tok, 8))
    threshold = json.loads((run / "model/tunelab_model.json").read_text())["threshold"]
    assert preds.threshold == threshold
    assert (preds.predicted() == (torch.sigmoid(plain).numpy() >= threshold)).all()


def test_rank_models_scores_a_multilabel_probe(finished_run, tiny_bert):
    recipe, run, _ = finished_run
    ranking = rank_models(recipe, RunDir(run), [str(tiny_bert)])
    (entry,) = ranking["candidates"]
    assert ranking["metric"] == "probe_micro_f1" and ranking["higher_is_better"]
    assert entry["error"] is None and 0.0 <= entry["score"] <= 1.0
