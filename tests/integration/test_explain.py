"""`tunelab explain` on tiny models trained in the test.

The classifier is trained on texts whose label is decided by one planted word ("brilliant"), so
a right explanation is known: every method must rank that word first, the surrogate rules must
use it, and each method's comprehensiveness must beat a random ordering of the words.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.helpers import FILLER, NEG, POS, classification_recipe, qa_rows, sft_recipe, write_jsonl

from tunelab.cli.main import main
from tunelab.config.load import RecipeError, validate_recipe
from tunelab.pipeline import open_run, run_pipeline, run_stage

PLANTED = "brilliant"
ATTRIBUTIONS = ["integrated_gradients", "gradient_x_input", "occlusion", "shap", "lime"]


def planted_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Label ``pos`` iff the text contains the planted word; every text has one distracting sentiment word."""
    rng = random.Random(seed)
    distract = [w for w in POS + NEG if w != PLANTED]
    rows = []
    for i in range(n):
        words = [*rng.choices(FILLER, k=rng.randint(3, 8)), rng.choice(distract)]
        rng.shuffle(words)
        if i % 2 == 0:
            words.insert(rng.randrange(len(words) + 1), PLANTED)
        rows.append({"text": " ".join(words), "label": "pos" if i % 2 == 0 else "neg"})
    return rows


def _raw(tiny_bert: Path, out: Path) -> dict:
    data = write_jsonl(out / "planted.jsonl", planted_rows(400))
    raw = classification_recipe(
        tiny_bert, data, out, epochs=4, learning_rate=2e-3, precision="fp32", metric_for_best="loss"
    )
    raw["stages"] = ["data", "train", "explain"]
    raw["explain"] = {
        "n": 16,
        "select": ["random"],
        "global_importance": {"n": 60},
        "layers": {"max_examples": 80},
    }
    return raw


def _run_fp32(recipe) -> None:
    """The pipeline in fp32 (exact gradients for the checks below). accelerate keeps one
    process-wide state and refuses another precision once set: start from, and leave, a clean one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    try:
        run_pipeline(recipe)
    finally:
        AcceleratorState._reset_state()


@pytest.fixture(scope="module")
def planted_run(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain")
    raw = _raw(tiny_bert, out)
    recipe = validate_recipe(raw)
    _run_fp32(recipe)
    path = out / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return recipe, open_run(recipe).root, path


def _examples(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "explain" / "examples.jsonl").read_text().splitlines()]


def _top_word(example: dict, method: str) -> str:
    scores = example["methods"][method]["words"]
    return example["words"][int(np.argmax(scores))].lower()


def test_every_method_ranks_the_planted_word_first(planted_run):
    _, root, _ = planted_run
    planted = [e for e in _examples(root) if PLANTED in e["text"].split()]
    assert len(planted) >= 5
    for method in ATTRIBUTIONS:
        hits = [_top_word(e, method) == PLANTED for e in planted]
        assert np.mean(hits) >= 0.9, (method, hits)
    assert all(e["prediction"]["label"] == "pos" for e in planted)


def test_rules_use_the_planted_word_and_methods_beat_random(planted_run):
    _, root, _ = planted_run
    rules = json.loads((root / "explain" / "rules.json").read_text())
    assert any(c["ngram"] == PLANTED for r in rules["rules"] for c in r["conditions"])
    assert rules["fidelity"] > rules["majority_fidelity"]
    assert PLANTED in (root / "explain" / "rules.txt").read_text()
    faith = json.loads((root / "explain" / "faithfulness.json").read_text())
    random_comp = faith["methods"]["random"]["comprehensiveness"]
    for method in ATTRIBUTIONS:
        assert faith["methods"][method]["comprehensiveness"] > random_comp, method
        assert faith["methods"][method]["sufficiency"] < faith["methods"]["random"]["sufficiency"], method
    assert {(a["a"], a["b"]) for a in faith["agreement"]} >= {("integrated_gradients", "occlusion")}


def test_artifacts_global_view_and_layers(planted_run):
    _, root, _ = planted_run
    folder = root / "explain"
    for name in (
        "examples.jsonl",
        "global.json",
        "rules.txt",
        "rules.json",
        "layers.json",
        "faithfulness.json",
        "attention.json",
        "index.html",
    ):
        assert (folder / name).is_file(), name
    top = json.loads((folder / "global.json").read_text())["labels"]["pos"]["top"]
    assert top[0]["word"] == PLANTED
    layers = json.loads((folder / "layers.json").read_text())
    assert len(layers["probe"]) == 3  # embeddings + 2 layers
    assert max(p["accuracy"] for p in layers["probe"]) > max(p["majority"] for p in layers["probe"])
    assert min(c["cka"] for c in layers["cka"]) < 1 - 1e-3  # fine-tuning changed the network somewhere
    page = (folder / "index.html").read_text()
    assert "could not be rendered" not in page  # every section rendered
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page.lower()
    # special tokens are never ranked: they belong to no word
    ex = _examples(root)[0]
    assert all(w == -1 for t, w in zip(ex["tokens"], ex["word_of"], strict=True) if t in ("[CLS]", "[SEP]"))


def test_integrated_gradients_completeness(planted_run):
    from tunelab.explain.choose import subject_for
    from tunelab.explain.context import load_context
    from tunelab.explain.gradients import baseline_ids, integrated_gradients

    recipe, _root, _ = planted_run
    ctx = load_context(recipe, open_run(recipe))
    subject = subject_for(ctx, f"the film was a {PLANTED} story")
    ctx.cfg.ig_steps = 300
    got = integrated_gradients(ctx, subject)
    p = ctx.predictor
    # f (the target logit) computed apart from captum
    f_x = p.class_scores([subject.ids], logits=True)[0, subject.target]
    f_b = p.class_scores([baseline_ids(ctx, subject)], logits=True)[0, subject.target]
    assert f_x - f_b > 0.2  # the planted word moves the prediction: the check is not trivially 0 = 0
    # completeness against those separate passes, not against captum's own convergence delta
    assert got.token_scores.sum() == pytest.approx(f_x - f_b, rel=0.02)
    assert abs(got.info["convergence_delta"]) < 0.05 * (f_x - f_b)  # and captum agrees


def test_attention_maps_and_rollout_from_an_sdpa_model(planted_run):
    from tunelab.explain.attention import attention_maps, rollout
    from tunelab.explain.choose import subject_for
    from tunelab.explain.context import load_context

    recipe, _, _ = planted_run
    ctx = load_context(recipe, open_run(recipe))
    assert ctx.model.config._attn_implementation == "sdpa"  # transformers 5 default: no attentions
    subject = subject_for(ctx, "a quite brilliant film")
    maps = attention_maps(ctx, subject.ids)
    cfg = ctx.model.config
    n = len(subject.ids)
    assert maps.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, n, n)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(rollout(maps).sum(-1), 1.0, atol=1e-4)
    assert ctx.model.config._attn_implementation == "sdpa"  # switched back afterwards


def test_same_seed_gives_the_same_lime_and_shap(planted_run):
    from tunelab.explain.choose import subject_for
    from tunelab.explain.context import load_context
    from tunelab.explain.sampling import lime_values, shap_values

    recipe, _, _ = planted_run
    ctx = load_context(recipe, open_run(recipe))
    subject = subject_for(ctx, "the cast was brilliant but the plot was dull")
    for fn in (lime_values, shap_values):
        a, b = fn(ctx, subject).token_scores, fn(ctx, subject).token_scores
        np.testing.assert_array_equal(a, b)
        assert np.abs(a).sum() > 0


def test_cli_text_long_text_and_base(planted_run, capsys):
    _, root, path = planted_run
    long_text = " ".join(["the film was"] * 20) + f" {PLANTED}"
    assert main(["explain", str(path), "--text", long_text]) == 0
    ex = _examples(root)
    assert len(ex) == 1 and ex[0]["truncated"] and ex[0]["source"] == "given"
    page = (root / "explain" / "index.html").read_text()
    assert "longer than model.max_length" in page
    assert "the end of the text was cut" in page and "could not be rendered" not in page
    assert main(["explain", str(path), "--base", "--n", "2"]) == 0
    assert "base model" in (root / "explain" / "index.html").read_text()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"methods": ["integrated_gradients", "nope"]}, "unknown method(s) ['nope']; known:"),
        ({"shap_max_evals": 0}, "explain.shap_max_evals"),
        ({"lime_num_samples": 10}, "explain.lime_num_samples"),
        ({"colour": "red"}, "explain.colour"),
    ],
)
def test_bad_explain_settings_are_recipe_errors(tiny_bert, tmp_path, change, needle):
    raw = _raw(tiny_bert, tmp_path)
    raw["explain"].update(change)
    with pytest.raises(RecipeError) as err:
        validate_recipe(raw)
    assert needle in str(err.value)


def test_bad_input_messages(planted_run, tiny_bert, tmp_path, capsys):
    _, _, path = planted_run
    assert main(["explain", str(path), "--text", "   "]) == 1
    assert "empty text" in capsys.readouterr().err
    assert main(["explain", str(path), "--split", "nope"]) == 1
    err = capsys.readouterr().err
    assert "'nope'" in err and "train, validation, test" in err and "tunelab data" not in err
    # a run with data but no trained model says which stage to run first
    raw = _raw(tiny_bert, tmp_path)
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(yaml.safe_dump(raw))
    run_stage("data", validate_recipe(raw))
    assert main(["explain", str(fresh)]) == 1
    err = capsys.readouterr().err
    assert "tunelab train" in err and "Traceback" not in err


def test_causal_lm_answer_attribution_and_logit_lens(tiny_llama, tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", qa_rows(120))
    raw = sft_recipe(tiny_llama, data, tmp_path, epochs=1, precision="fp32")
    raw["stages"] = ["data", "train", "explain"]
    raw["explain"] = {
        "n": 2,
        "texts": ["what is 2 plus 3 ?"],
        "methods": ["integrated_gradients", "gradient_x_input", "occlusion", "attention"],
        "global_importance": {"n": 6},
        "layers": {"max_examples": 12},
    }
    recipe = validate_recipe(raw)
    _run_fp32(recipe)
    folder = open_run(recipe).root / "explain"
    ex = _examples(folder.parent)
    assert ex[0]["answer"]["source"] == "generated" and ex[1]["answer"]["source"] == "given"
    for e in ex:
        n_answer = len(e["answer"]["tokens"])
        assert len(e["per_answer_token"]) == n_answer
        assert all(len(row) == e["n_prompt"] for row in e["per_answer_token"])
        ranked = [w for w in e["word_of"][e["n_prompt"] :]]
        assert set(ranked) == {-1}  # answer tokens are never ranked as prompt words
        assert "what" in [w.lower() for w in e["words"]]
        assert "<|im_start|>" not in e["words"]  # chat-template tokens are not words of the prompt
    lens = json.loads((folder / "layers.json").read_text())["logit_lens"]
    assert lens["last_layer_max_abs_diff"] < 1e-3
    assert json.loads((folder / "faithfulness.json").read_text())["units"].startswith("log-probability")
    page = (folder / "index.html").read_text()
    assert "could not be rendered" not in page
