"""A whole classification run on a tiny BERT: artifacts, learning, and loading without tunelab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

from tunelab.config import validate_recipe
from tunelab.pipeline import run_pipeline
from tunelab.runs import read_jsonl


@pytest.fixture(scope="module")
def finished_run(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    data = write_jsonl(tmp / "reviews.jsonl", sentiment_rows(240))
    recipe = validate_recipe(classification_recipe(tiny_bert, data, tmp / "runs"))
    results = run_pipeline(recipe)
    return recipe, recipe.run_dir_path(), results


def test_run_directory_has_every_artifact(finished_run):
    _, run, results = finished_run
    assert [r.stage for r in results] == ["data", "train", "evaluate"]
    for rel in (
        "recipe.yaml",
        "manifest.json",
        "data/train.jsonl",
        "data/labels.json",
        "model/config.json",
        "model/model.safetensors",
        "metrics/train_log.jsonl",
        "metrics/eval.json",
        "metrics/comparison.json",
    ):
        assert (run / rel).is_file(), rel
    manifest = json.loads((run / "manifest.json").read_text())
    assert {s: v["status"] for s, v in manifest["stages"].items()} == {
        "data": "done",
        "train": "done",
        "evaluate": "done",
    }
    assert manifest["seed"] == 7 and manifest["environment"]["versions"]["torch"]
    assert not list(run.rglob("*.tmp")), "no temporary files left behind"


def test_tuned_model_beats_base(finished_run):
    _, run, _ = finished_run
    comparison = json.loads((run / "metrics/comparison.json").read_text())
    acc = comparison["metrics"]["accuracy"]
    assert acc["tuned"]["value"] >= 0.9 > acc["base"]["value"]
    assert acc["improved"]
    ev = json.loads((run / "metrics/eval.json").read_text())
    assert ev["accuracy"]["low"] <= ev["accuracy"]["value"] <= ev["accuracy"]["high"]
    assert set(ev["per_class"]) == {"neg", "pos"}
    assert "per_example" not in ev, "per-example figures live in predictions.jsonl"
    gain = comparison["paired_difference"]["accuracy"]
    assert gain["value"] == pytest.approx(acc["tuned"]["value"] - acc["base"]["value"])
    assert gain["low"] <= gain["value"] <= gain["high"] and gain["prob_b_better"] > 0.95
    preds = read_jsonl(run / "metrics/predictions.jsonl")
    assert len(preds) == ev["n_examples"]
    assert sum(p["predicted"] == p["label"] for p in preds) / len(preds) == pytest.approx(
        acc["tuned"]["value"]
    )


def test_second_run_skips_current_stages(finished_run):
    recipe, _, _ = finished_run
    assert all(r.skipped for r in run_pipeline(recipe))


def test_plain_transformers_loads_the_model_and_agrees(finished_run, tmp_path):
    recipe, run, _ = finished_run
    rows = read_jsonl(run / "data/test.jsonl")[:8]
    script = f"""
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(run / "model")!r})
model = AutoModelForSequenceClassification.from_pretrained({str(run / "model")!r}).eval()
texts = json.loads(sys.stdin.read())
with torch.no_grad():
    enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    print(json.dumps(model(**enc).logits.tolist()))
assert "tunelab" not in sys.modules
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([r["text"] for r in rows]),
        capture_output=True,
        text=True,
        check=True,
    )
    plain = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1]))

    from tunelab.runs import RunDir
    from tunelab.tasks import get_task

    task = get_task("classification")
    labels = RunDir(run).labels()
    model, tok = task.load_tuned(run / "model", recipe, labels)
    with torch.no_grad():
        enc = tok(
            [r["text"] for r in rows], padding=True, truncation=True, max_length=32, return_tensors="pt"
        )
        ours = model(**enc).logits
    # the folder holds raw logits; tunelab divides them by the temperature fitted on validation
    temperature = json.loads((run / "model" / "tunelab_model.json").read_text())["temperature"]
    torch.testing.assert_close(ours, plain / temperature, atol=1e-5, rtol=1e-4)


def test_the_tfidf_baseline_sits_beside_base_and_tuned_and_the_cli_says_who_won(finished_run, capsys):
    """One word of a small vocabulary decides each label: a bag of words is all it takes, so the
    TF-IDF baseline must be (near) perfect, and the summary must say whether fine-tuning beat it."""
    from tunelab.cli.main import main

    _, run, _ = finished_run
    comparison = json.loads((run / "metrics/comparison.json").read_text())
    acc = comparison["metrics"]["accuracy"]
    assert {"base", "baseline", "tuned"} <= set(acc)
    assert acc["baseline"]["value"] >= 0.95
    assert acc["baseline"]["low"] <= acc["baseline"]["value"] <= acc["baseline"]["high"]
    pair = comparison["paired_vs_baseline"]["accuracy"]
    assert pair["value"] == pytest.approx(acc["tuned"]["value"] - acc["baseline"]["value"])
    verdict = comparison["verdict"]
    assert verdict["metric"] == "accuracy"
    assert verdict["beats_baseline"] == (pair["low"] > 0), "beats only when the whole interval is above 0"
    baseline_rows = read_jsonl(run / "metrics/baseline_predictions.jsonl")
    assert len(baseline_rows) == comparison["n_examples"]

    capsys.readouterr()
    assert main(["evaluate", str(run / "recipe.yaml"), "--force"]) == 0
    said = capsys.readouterr()
    said = " ".join((said.out + said.err).split())
    assert " ".join(verdict["sentence"].split()) in said
    assert ("does NOT beat" in said) == (verdict["outcome"] == "behind")
    cal = json.loads((run / "metrics/eval.json").read_text())["calibration"]
    before, after = cal["before"]["ece"], cal["after"]["ece"]
    assert f"T = {cal['temperature']:.3f}: ECE {before:.4f} -> {after:.4f}" in said


def test_eval_json_carries_calibration_before_and_after_with_reliability_bins(finished_run):
    _, run, _ = finished_run
    ev = json.loads((run / "metrics/eval.json").read_text())
    info = json.loads((run / "model" / "tunelab_model.json").read_text())
    cal = ev["calibration"]
    assert cal["temperature"] == info["temperature"] > 0
    fit = info["temperature_fit"]
    assert fit["validation_rows"] > 0 and fit["log_loss_after"] <= fit["log_loss_before"]
    for side in ("before", "after"):
        assert set(cal[side]) == {"ece", "brier", "log_loss"}
        bins = cal["reliability"][side]
        assert sum(b["count"] for b in bins) == ev["n_examples"]
        assert all(0 <= b["accuracy"] <= 1 and b["low"] < b["confidence"] <= b["high"] for b in bins)
    assert ev["ece"] == cal["after"]["ece"], "the headline ECE is the calibrated model's"
