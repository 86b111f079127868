"""Model preflight: the name resolves, the weights load safely, and the model fits the task."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.helpers import qa_rows, sentiment_rows, write_jsonl
from tests.unit.preflight.conftest import keys


@pytest.fixture
def reviews(tmp_path):
    return write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(20))


@pytest.fixture
def qa(tmp_path):
    return write_jsonl(tmp_path / "qa.jsonl", qa_rows(20))


def _recipe(data, model, task="classification", **extra) -> dict:
    model = model if isinstance(model, dict) else {"name": str(model)}
    return {"task": task, "data": {"sources": [{"path": str(data)}]}, "model": model, **extra}


def test_good_models_pass(reviews, qa, tiny_bert, tiny_llama, preflight):
    assert preflight(_recipe(reviews, "minilm")) == ([], [])
    assert preflight(_recipe(reviews, tiny_bert)) == ([], [])
    assert preflight(_recipe(reviews, tiny_llama)) == ([], [])  # a decoder with a classification head
    assert preflight(_recipe(qa, tiny_llama, "sft")) == ([], [])
    assert preflight(_recipe(qa, "smollm2", "sft")) == ([], [])
    assert preflight(_recipe(reviews, tiny_llama, "lm")) == ([], [])


def test_an_encoder_for_sft_is_a_problem(qa, tiny_bert, preflight):
    problems, _ = preflight(_recipe(qa, tiny_bert, "sft"))
    assert keys(problems) == ["model.name"]
    assert "encoder-only model (bert: BertModel)" in problems[0] and "causal LM" in problems[0]
    problems, _ = preflight(_recipe(qa, "minilm", "sft"))
    assert keys(problems) == ["model.name"] and "smollm2" in problems[0]


def test_sft_needs_a_chat_template(tmp_path, qa, reviews, tiny_llama, preflight):
    plain = tmp_path / "no-template"
    shutil.copytree(tiny_llama, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    problems, _ = preflight(_recipe(qa, plain, "sft"))
    assert keys(problems) == ["model.name"] and "no chat template" in problems[0]
    assert preflight(_recipe(reviews, plain, "lm")) == ([], [])  # lm needs none


def test_pickle_only_weights_name_allow_pickle(tmp_path, reviews, tiny_bert, preflight):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_bert, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    problems, _ = preflight(_recipe(reviews, pickled))
    assert keys(problems) == ["model.name"]
    assert "pytorch_model.bin" in problems[0] and "model.allow_pickle: true" in problems[0]
    assert preflight(_recipe(reviews, {"name": str(pickled), "allow_pickle": True})) == ([], [])


def test_folders_without_config_or_weights(tmp_path, reviews, preflight):
    empty = tmp_path / "empty"
    empty.mkdir()
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    (weightless / "config.json").write_text('{"model_type": "bert"}')
    (weightless / "tokenizer.json").write_text("{}")
    for folder, needle in ((empty, "no config.json"), (weightless, "no model weights")):
        problems, _ = preflight(_recipe(reviews, folder))
        assert keys(problems) == ["model.name"] and needle in problems[0]
    problems, _ = preflight(_recipe(reviews, "./not-here"))
    assert keys(problems) == ["model.name"] and "does not exist" in problems[0]


def test_unknown_alias_and_bad_names(reviews, preflight):
    problems, _ = preflight(_recipe(reviews, "smollm"))
    assert keys(problems) == ["model.name"] and "did you mean 'smollm2'?" in problems[0]
    problems, _ = preflight(_recipe(reviews, "a/b/c"))
    assert keys(problems) == ["model.name"] and "valid hub id" in problems[0]


def test_an_offline_hub_id_is_a_note_not_a_problem(reviews, qa, preflight):
    problems, notes = preflight(
        _recipe(qa, "tunelab-tests/no-such-model", "sft", search={"candidates": ["gpt2", "minilmm"]})
    )
    assert keys(problems) == ["search.candidates.1"]
    assert keys(notes) == ["model.name", "search.candidates.0"]
    assert all("not checked: offline (HF_HUB_OFFLINE=1)" in n for n in notes)


def test_an_offline_hub_id_in_the_cache_is_checked(tmp_path, qa, tiny_bert, monkeypatch, preflight):
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--org--tiny-bert" / "snapshots" / "abc123"
    shutil.copytree(tiny_bert, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    problems, notes = preflight(_recipe(qa, "org/tiny-bert", "sft"))
    assert keys(problems) == ["model.name"] and "encoder-only" in problems[0]
    assert keys(notes) == ["model.name"] and "local Hugging Face cache" in notes[0]


def test_online_hub_ids_are_checked_by_their_file_list(qa, reviews, tiny_bert, monkeypatch, preflight):
    from types import SimpleNamespace

    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    repos = {
        "org/bert": ["config.json", "tokenizer_config.json", "model.safetensors"],
        "org/old": ["config.json"],
    }
    repos["org/old"].append("pytorch_model.bin")

    def model_info(self, name, revision=None, timeout=None):
        if name not in repos:
            raise RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=f) for f in repos[name]])

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda name, f, **kw: str(tiny_bert / f))
    problems, notes = preflight(
        _recipe(qa, "org/bert", "sft", search={"candidates": ["org/old", "org/none"]})
    )
    assert keys(problems) == [
        "model.name",
        "search.candidates.0",
        "search.candidates.0",
        "search.candidates.1",
    ]
    assert "encoder-only" in problems[0]
    assert "model.allow_pickle" in problems[1] and "encoder-only" in problems[2]
    assert "no model 'org/none' on the Hugging Face hub" in problems[3]
    assert notes == []  # checked online: nothing left unchecked
    assert preflight(_recipe(reviews, "org/bert")) == ([], [])
