"""`tunelab audit`: a classifier trained on data with a planted gender bias fails the gates; the same
model trained on the data with the bias removed passes them. Cards carry the run's real figures."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from tests.helpers import FILLER, NEG, POS, classification_recipe, write_jsonl

from tunelab.cli.main import main

GENDERED = ["he", "she", "his", "her", "him", "man", "woman", "said", "thinks"]


@pytest.fixture(scope="module")
def gender_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT whose word-level vocabulary knows the gendered words (so swaps reach the model)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("gender-bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = specials + sorted(set(POS + NEG + FILLER + GENDERED + [str(i) for i in range(1000)]))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    cfg = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def _rows(n: int, biased: bool, seed: int = 0) -> list[dict]:
    """Reviews by a man or a woman. Biased: the label follows the gender; fair: the sentiment word."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        gender = "male" if i % 2 == 0 else "female"
        if biased:  # the label follows the gender; the sentiment word is noise
            label, word = ("pos" if gender == "male" else "neg"), rng.choice(POS + NEG)
        else:  # the label follows the sentiment word; the gender is independent of it
            label = rng.choice(["pos", "neg"])
            word = rng.choice(POS if label == "pos" else NEG)
        who = "he" if gender == "male" else "she"
        text = f"{who} said the film was {word} and {rng.choice(FILLER)} {i}"
        rows.append({"text": text, "label": label, "gender": gender})
    return rows


def _recipe(model: Path, out: Path, biased: bool) -> Path:
    data = write_jsonl(out / "reviews.jsonl", _rows(400, biased))
    raw = classification_recipe(model, data, out, epochs=3)
    raw["data"]["sources"][0]["keep"] = ["gender"]
    raw["data"]["dedup"] = {
        "near": {"enabled": False},
        "leakage": "warn",
    }  # templated texts: alike on purpose
    raw["stages"] = ["data", "train", "evaluate", "audit"]
    raw["audit"] = {
        "categories": ["gender"],
        "group_column": "gender",
        "min_group_size": 10,
        "bootstrap_samples": 100,
        "gates": {"flip_rate": 0.2, "parity_difference": 0.3, "regression": None},
    }
    path = out / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def audited(gender_bert, tmp_path_factory):
    """Both runs, planted bias and bias removed, each through `tunelab run`: (exit code, stderr, run dir)."""
    import contextlib
    import io

    out = {}
    for biased in (True, False):
        folder = tmp_path_factory.mktemp("biased" if biased else "fair")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["run", str(_recipe(gender_bert, folder, biased))])
        out[biased] = (code, " ".join(err.getvalue().split()), folder)
    return out


@pytest.mark.parametrize("biased", [True, False], ids=["planted-bias", "bias-removed"])
def test_planted_bias_fails_both_gates_and_removed_bias_passes(audited, biased):
    code, err, folder = audited[biased]
    fairness = json.loads((folder / "cls" / "audit" / "fairness.json").read_text())
    flip = fairness["counterfactual"]["gender"]["flip_rate"]["value"]
    parity = fairness["groups"]["demographic_parity_difference"]
    if biased:
        assert code == 3, err
        assert "audit.gates.flip_rate" in err and "audit.gates.parity_difference" in err
        assert flip > 0.2 and parity > 0.3
        assert not fairness["gates"]["passed"] and len(fairness["gates"]["breaches"]) == 2
    else:
        assert code == 0, err
        assert flip <= 0.2 and parity <= 0.3 and fairness["gates"]["passed"]
    assert fairness["base"]["gender"]["n_pairs"] == fairness["counterfactual"]["gender"]["n_pairs"] > 0
    assert (folder / "cls" / "audit" / "index.html").is_file()


def test_cards_quote_the_run_and_the_model_card_parses(audited, gender_bert):
    from huggingface_hub import ModelCard

    root = audited[False][2] / "cls"
    card = ModelCard.load(root / "audit" / "model_card.md")
    evaluation = json.loads((root / "metrics" / "eval.json").read_text())
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(evaluation["accuracy"]["value"], abs=1e-6)
    assert results["macro_f1"] == pytest.approx(evaluation["macro_f1"]["value"], abs=1e-6)
    assert card.data.base_model == str(gender_bert)
    assert f"{evaluation['accuracy']['value']:.4f}" in card.text
    fairness = json.loads((root / "audit" / "fairness.json").read_text())
    assert f"{fairness['counterfactual']['gender']['flip_rate']['value']:.3f}" in card.text
    report = json.loads((root / "data" / "data_report.json").read_text())
    data_card = (root / "audit" / "data_card.md").read_text()
    assert f"Rows read: {report['summary']['rows_read']}, kept: {report['summary']['rows_kept']}" in data_card
    for name, split in report["splits"].items():
        assert f"| {name} | {split['rows']} |" in data_card


def test_bad_audit_settings_are_named(audited, capsys):
    recipe = audited[False][2] / "recipe.yaml"  # its data, train and evaluate are current: only audit runs
    raw = yaml.safe_load(recipe.read_text())
    raw["audit"]["gates"]["accuracy_drop"] = 0.1
    raw["audit"]["categories"] = ["gender", "caste"]
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(recipe)]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "audit.gates.accuracy_drop" in err and "caste" in err
    raw["audit"]["gates"].pop("accuracy_drop")
    raw["audit"]["categories"] = ["gender"]
    raw["audit"]["group_column"] = "age_band"
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["run", str(recipe)]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "audit.group_column" in err and "age_band" in err and "keep" in err
