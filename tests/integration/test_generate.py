"""`tunelab generate` and `tunelab prompts compare` on tiny models trained in the test."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from tests.helpers import classification_recipe, qa_rows, sentiment_rows, sft_recipe, write_jsonl

from tunelab.cli.main import main
from tunelab.config.load import RecipeError, validate_recipe
from tunelab.pipeline import open_run, run_pipeline, run_stage


def _sft_raw(tiny_llama: Path, out: Path) -> dict:
    raw = sft_recipe(tiny_llama, write_jsonl(out / "qa.jsonl", qa_rows(160)), out, epochs=1)
    raw["stages"] = ["data", "train", "generate"]
    raw["generate"] = {
        "n_prompts": 6,
        "prompt": {"few_shot": {"k": 1, "strategy": "similar"}},  # embeddings from the bundled MiniLM
        "decoding": {"temperature": 0.9, "num_samples": 3, "max_new_tokens": 8},
        "sweep": {"enabled": True, "temperatures": [0.3, 1.2], "top_ps": [0.9, 1.0], "prompts": 4},
        "diversity_target": {"distinct_2": 0.2},
        "synthetic": {
            "enabled": True,
            "n": 3,
            "max_rounds": 2,
            "seed_examples": 1,
            "decoding": {"temperature": 1.0, "max_new_tokens": 16},
        },
        "compare": [
            {"name": "plain", "template": "{{ input }}"},
            {"name": "no_question", "template": "Answer:"},
        ],
    }
    return raw


@pytest.fixture(scope="module")
def sft_run(tiny_llama, tmp_path_factory):
    out = tmp_path_factory.mktemp("generate")
    raw = _sft_raw(tiny_llama, out)
    recipe = validate_recipe(raw)
    results = run_pipeline(recipe)
    path = out / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return recipe, open_run(recipe).root, path, results[-1]


def test_generate_writes_samples_diversity_sweep_and_synthetic(sft_run):
    _, root, _, result = sft_run
    folder = root / "generate"
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and all(len(s["samples"]) == 3 for s in samples)
    assert all(s["reference"] for s in samples)  # chat rows carry their reference answer
    # one similar train example each, shown as an earlier chat turn
    assert all(len(s["few_shot"]) == 1 and s["few_shot"][0] != s["prompt"] for s in samples)
    div = json.loads((folder / "diversity.json").read_text())
    assert set(div["within"]) >= {"distinct_1", "distinct_2", "self_bleu", "entropy", "repetition_rate"}
    assert div["quality"]["perplexity"] > 1 and div["quality"]["perplexity_model"] == "base"
    assert "rouge_l" in div["quality"] and div["tokens_per_s"] > 0
    sweep = json.loads((folder / "sweep.json").read_text())
    assert len(sweep["rows"]) == 4 and sweep["pareto_front"]
    assert sweep["target"]["reason"]
    ET.fromstring((folder / "sweep.svg").read_text())  # a well-formed SVG
    report = json.loads((folder / "synthetic_report.json").read_text())
    assert report["requested"] == 3 and report["rounds"] >= 1
    assert report["kept"] + sum(report["dropped"].values()) + report.get("surplus", 0) == report["produced"]
    assert (folder / "synthetic_card.md").is_file()
    page = (folder / "index.html").read_text()
    assert "Sweep" in page and "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert result.metrics["model"] == "tuned"


def test_same_seed_same_samples(sft_run):
    recipe, root, _, _ = sft_run
    before = (root / "generate/samples.jsonl").read_text()
    run_stage("generate", recipe, force=True)
    assert (root / "generate/samples.jsonl").read_text() == before


def test_prompts_compare_ranks_the_template_without_the_question_last(sft_run, capsys):
    _, root, path, _ = sft_run
    assert main(["prompts", "compare", str(path), "--n", "12"]) == 0
    out = capsys.readouterr()
    result = json.loads((root / "generate/prompts_compare.json").read_text())
    assert [t["name"] for t in result["templates"]][-1] == "no_question"
    assert "answer_perplexity" in out.err + out.out


def test_a_classification_run_checks_its_synthetic_texts_with_its_classifier(tiny_bert, tiny_llama, tmp_path):
    raw = classification_recipe(tiny_bert, write_jsonl(tmp_path / "r.jsonl", sentiment_rows(200)), tmp_path)
    raw["stages"] = ["data", "train", "generate"]
    raw["generate"] = {
        "generator": str(tiny_llama),
        "synthetic": {
            "enabled": True,
            "n": 4,
            "max_rounds": 2,
            "seed_examples": 2,
            "decoding": {"temperature": 1.0, "max_new_tokens": 12},
        },
    }
    recipe = validate_recipe(raw)
    run_pipeline(recipe)
    report = json.loads((open_run(recipe).root / "generate/synthetic_report.json").read_text())
    assert report["kind"] == "labeled" and "label" in report["filters"]
    assert report["produced"] > 0


def test_a_classifier_run_without_a_generator_says_which_key_to_set(tiny_bert, tmp_path, capsys):
    raw = classification_recipe(tiny_bert, write_jsonl(tmp_path / "r.jsonl", sentiment_rows(80)), tmp_path)
    raw["generate"] = {"synthetic": {"enabled": True}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    run_stage("data", validate_recipe(raw))
    assert main(["generate", str(path), "--base"]) == 1
    assert "generate.generator" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"decoding": {"preset": "wild"}}, "generate.decoding.preset"),
        ({"decoding": {"temperature": -0.1}}, "generate.decoding.temperature"),
        ({"decoding": {"top_p": 0}}, "generate.decoding.top_p"),
        ({"diversity_target": {"distinctness": 0.5}}, "unknown diversity metric(s) ['distinctness']"),
    ],
)
def test_bad_generate_settings_are_recipe_errors(tiny_llama, tmp_path, change, needle):
    raw = _sft_raw(tiny_llama, tmp_path)
    raw["generate"].update(change)
    with pytest.raises(RecipeError) as err:
        validate_recipe(raw)
    assert needle in str(err.value)


def test_bad_templates_and_lengths_name_the_key(sft_run, capsys):
    _, _, path, _ = sft_run
    assert main(["generate", str(path), "generate.prompt.template='{{ nope }}'"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["generate", str(path), "generate.prompt.template='{{ \"\" }}'"]) == 1
    assert "renders empty" in capsys.readouterr().err
    assert main(["generate", str(path), "generate.decoding.max_new_tokens=4000"]) == 1
    assert "generate.decoding.max_new_tokens" in capsys.readouterr().err
