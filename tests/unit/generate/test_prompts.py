"""Prompt templates: strict rendering, chat-template ids without a doubled BOS, few-shot selection."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer

from tunelab.generate.config import FewShotConfig, PromptConfig
from tunelab.generate.prompts import (
    PromptError,
    cached_embed,
    few_shot,
    pairs,
    render,
    template_hash,
)


@pytest.fixture(scope="module")
def tok(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture
def bos_tok(tiny_llama):
    """The tiny tokenizer made to add its BOS (``<|im_start|>``) to every encoded text, like Llama's."""
    t = AutoTokenizer.from_pretrained(tiny_llama)
    t.add_bos_token = True
    assert t("hi")["input_ids"][0] == t.bos_token_id
    return t


def test_an_undefined_variable_is_an_error_naming_it_and_the_template(tok):
    with pytest.raises(PromptError, match=r"generate\.prompt\.template.*'nope' is undefined"):
        render(PromptConfig(template="Q: {{ input }} {{ nope }}"), tok, "hello")


def test_an_undefined_variable_in_the_system_prompt_names_it(tok):
    with pytest.raises(PromptError, match=r"system.*'persona' is undefined"):
        render(PromptConfig(system="You are {{ persona }}."), tok, "hello")


def test_a_template_that_renders_empty_is_an_error(tok):
    with pytest.raises(PromptError, match="renders empty"):
        render(PromptConfig(template="{% if labels %}{{ input }}{% endif %}  \n"), tok, "hello")


def test_invalid_jinja_and_unsafe_access_are_prompt_errors(tok):
    with pytest.raises(PromptError, match="invalid Jinja2"):
        render(PromptConfig(template="{% for x in %}"), tok, "hello")
    with pytest.raises(PromptError, match="unsafe"):  # the sandbox: no way into Python internals
        render(PromptConfig(template="{{ input.__class__.__mro__ }}"), tok, "hello")


def test_reserved_names_cannot_be_recipe_variables(tok):
    with pytest.raises(PromptError, match=r"\['input'\] are reserved"):
        render(PromptConfig(variables={"input": "x"}), tok, "hello")


def test_variables_examples_labels_and_system_render(tok):
    cfg = PromptConfig(
        template=(
            "{{ task }} ({{ labels | join('/') }})\n"
            "{% for e in examples %}Q: {{ e.input }}\nA: {{ e.output }}\n{% endfor %}"
            "Q: {{ input }}\nA:"
        ),
        system="Be {{ tone }}.",
        variables={"task": "Classify", "tone": "brief"},
    )
    examples = [{"input": "what is 1 plus 1 ?", "output": "it is 2 ."}, {"input": "good", "output": "yes"}]
    got = render(cfg, tok, "what is 2 plus 2 ?", examples=examples, labels=["pos", "neg"])
    shots = "Q: what is 1 plus 1 ?\nA: it is 2 .\nQ: good\nA: yes\n"
    assert got.user == f"Classify (pos/neg)\n{shots}Q: what is 2 plus 2 ?\nA:"
    assert got.system == "Be brief."
    assert got.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        f"<|im_start|>user\n{got.user}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_the_default_template_is_the_input_alone(tok):
    got = render(PromptConfig(), tok, "what is 3 plus 4 ?")
    assert got.user == "what is 3 plus 4 ?" and got.system is None
    assert got.text == "<|im_start|>user\nwhat is 3 plus 4 ?<|im_end|>\n<|im_start|>assistant\n"


def test_examples_a_template_does_not_place_become_earlier_chat_turns(tok):
    examples = [{"input": "what is 1 plus 1 ?", "output": "it is 2 ."}]
    got = render(PromptConfig(), tok, "what is 3 plus 4 ?", examples=examples)
    assert got.user == "what is 3 plus 4 ?"
    assert got.text == (
        "<|im_start|>user\nwhat is 1 plus 1 ?<|im_end|>\n<|im_start|>assistant\nit is 2 .<|im_end|>\n"
        "<|im_start|>user\nwhat is 3 plus 4 ?<|im_end|>\n<|im_start|>assistant\n"
    )
    own = PromptConfig(template="{{ examples[0].input }} / {{ input }}")
    placed = render(own, tok, "q", examples=examples)
    assert placed.text.count("<|im_start|>user") == 1  # the template placed them: no extra turns


def test_ids_are_the_chat_templates_own_with_no_doubled_bos(bos_tok):
    cfg = PromptConfig(template="Q: {{ input }}", system="sys")
    got = render(cfg, bos_tok, "what is 1 plus 2 ?")
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Q: what is 1 plus 2 ?"}]
    ref = bos_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ref = ref["input_ids"] if hasattr(ref, "keys") else ref
    assert got.ids == list(ref)
    bos = bos_tok.bos_token_id
    assert got.ids[0] == bos and got.ids[1] != bos
    # <|im_start|> exactly where the template puts it: system, user, assistant turns
    assert got.ids.count(bos) == 3
    # what the check guards against: encoding the text with special tokens doubles the BOS
    assert bos_tok(got.text)["input_ids"][:2] == [bos, bos]


def test_without_a_chat_template_the_plain_text_gets_the_tokenizers_special_tokens(bos_tok):
    bos_tok.chat_template = None
    got = render(PromptConfig(template="Q: {{ input }}", system="sys"), bos_tok, "hi")
    assert got.text == "sys\n\nQ: hi"
    assert got.ids == bos_tok("sys\n\nQ: hi")["input_ids"]
    assert got.ids[0] == bos_tok.bos_token_id and got.ids[1] != bos_tok.bos_token_id


def test_a_template_file_is_read_relative_to_the_working_directory(tok, tmp_path, monkeypatch):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "qa.j2").write_text("Question: {{ input }}\nAnswer:\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    got = render(PromptConfig(file="prompts/qa.j2"), tok, "what is 1 plus 2 ?")
    assert got.user == "Question: what is 1 plus 2 ?\nAnswer:"  # the file's final newline is dropped
    with pytest.raises(PromptError, match=r"generate\.prompt\.file.*missing\.j2"):
        render(PromptConfig(file="missing.j2"), tok, "x")
    (tmp_path / "bad.j2").write_text("{{ input }} {{ nope }}", encoding="utf-8")
    with pytest.raises(PromptError, match=r"generate\.prompt\.file \(bad\.j2\).*'nope'"):
        render(PromptConfig(file="bad.j2"), tok, "x")


def test_template_hash_follows_template_system_and_variables():
    base = PromptConfig(template="Q: {{ input }}", variables={"a": 1, "b": 2})
    assert template_hash(base) == template_hash(
        PromptConfig(template="Q: {{ input }}", variables={"b": 2, "a": 1})
    )
    assert len(template_hash(base)) == 12
    others = [
        PromptConfig(template="Q:  {{ input }}", variables={"a": 1, "b": 2}),
        PromptConfig(template="Q: {{ input }}", variables={"a": 1, "b": 3}),
        PromptConfig(template="Q: {{ input }}", variables={"a": 1, "b": 2}, system="s"),
    ]
    assert len({template_hash(base), *map(template_hash, others)}) == 4
    # the name and the few-shot settings are not part of the template
    renamed = PromptConfig(
        name="x", template="Q: {{ input }}", variables={"a": 1, "b": 2}, few_shot=FewShotConfig(k=2)
    )
    assert template_hash(renamed) == template_hash(base)


def test_pairs_of_each_row_shape():
    chat = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": "two"},
        ]
    }
    assert pairs(chat) == ("second", "two")
    assert pairs({"messages": [{"role": "user", "content": "open"}]}) == ("open", "")
    assert pairs({"text": "great film", "label": "pos"}) == ("great film", "pos")
    assert pairs({"text": "great film", "label": 1}) == ("great film", "1")
    assert pairs({"text": "just text"}) == ("just text", "")
    with pytest.raises(ValueError, match="neither"):
        pairs({"prompt": "x"})
    with pytest.raises(ValueError, match="no user message"):
        pairs({"messages": [{"role": "assistant", "content": "x"}]})


ROWS = [{"input": f"q{i}", "output": f"a{i}"} for i in range(20)]


def test_random_few_shot_is_seeded_and_excludes_the_query():
    first = few_shot(ROWS, "q3", 4, "random", seed=7)
    assert first == few_shot(ROWS, "q3", 4, "random", seed=7)
    assert len(first) == 4 and len({r["input"] for r in first}) == 4
    assert first != few_shot(ROWS, "q3", 4, "random", seed=8)
    for query in [r["input"] for r in ROWS]:
        assert query not in [r["input"] for r in few_shot(ROWS, query, 19, "random", seed=7)]
    # the query replaces only its own slot: other queries keep the same examples
    picked = [r["input"] for r in first]
    other = few_shot(ROWS, picked[0], 4, "random", seed=7)
    assert [r["input"] for r in other][:3] == picked[1:]
    assert few_shot(ROWS, "q3", 0, "random", seed=7) == []
    assert len(few_shot(ROWS[:3], "q0", 10, "random", seed=7)) == 2


def test_similar_few_shot_picks_the_nearest_rows_by_cosine():
    vectors = {
        "query": [1.0, 0.0, 0.0],
        "near": [0.9, 0.1, 0.0],
        "nearer": [10.0, 0.5, 0.0],  # cosine, not dot product: the length does not matter
        "far": [0.0, 1.0, 0.0],
        "opposite": [-1.0, 0.0, 0.0],
        "side": [0.5, 0.0, 0.5],
    }
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([vectors[t] for t in texts])

    rows = [{"input": t, "output": t.upper()} for t in ["far", "near", "opposite", "query", "side", "nearer"]]
    got = few_shot(rows, "query", 3, "similar", seed=0, embed=embed)
    assert [r["input"] for r in got] == ["nearer", "near", "side"]  # the query's own row is left out
    assert calls[0][0] == "query" and "query" not in calls[0][1:]
    with pytest.raises(ValueError, match="unknown few-shot strategy"):
        few_shot(rows, "query", 3, "nearest", seed=0, embed=embed)


def test_cached_embed_embeds_each_text_once():
    seen = []

    def embed(texts):
        seen.extend(texts)
        return np.array([[float(len(t)), 1.0] for t in texts])

    cached = cached_embed(embed)
    assert cached(["a", "bb", "a"]).tolist() == [[1.0, 1.0], [2.0, 1.0], [1.0, 1.0]]
    assert cached(["bb", "ccc"]).shape == (2, 2)
    assert seen == ["a", "bb", "ccc"]
