"""``prompts compare``: templates scored on validation rows and ranked; a broken template ranks last."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.helpers import qa_rows
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunelab.generate import compare as compare_mod
from tunelab.generate.compare import compare_templates, end_ids, format_table
from tunelab.generate.config import FewShotConfig, PromptConfig
from tunelab.generate.prompts import PromptError, render


@pytest.fixture(scope="module")
def tok(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def model(tiny_llama):
    return AutoModelForCausalLM.from_pretrained(tiny_llama)


def chat(r: dict) -> dict:
    return {
        "messages": [
            {"role": "user", "content": r["prompt"]},
            {"role": "assistant", "content": r["response"]},
        ]
    }


GOOD = PromptConfig(name="good", template="{{ input }}")
QA = PromptConfig(name="qa", template="Question: {{ input }}\nAnswer:")
NO_QUESTION = PromptConfig(name="no_question", template="Answer:")


def _train(model, tok, rows: list[dict], steps: int = 30, batch: int = 8) -> None:
    """A few dozen AdamW steps on the answers of ``rows`` rendered with GOOD (answer tokens only)."""
    end = end_ids(tok)
    feats = [
        (render(GOOD, tok, r["prompt"]).ids, tok(r["response"], add_special_tokens=False)["input_ids"] + end)
        for r in rows
    ]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        chunk = [feats[(step * batch + j) % len(feats)] for j in range(batch)]
        width = max(len(p) + len(a) for p, a in chunk)
        ids = torch.full((batch, width), tok.pad_token_id)
        labels = torch.full((batch, width), -100)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for j, (p, a) in enumerate(chunk):
            ids[j, : len(p) + len(a)] = torch.tensor(p + a)
            labels[j, len(p) : len(p) + len(a)] = torch.tensor(a)
            mask[j, : len(p) + len(a)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_a_template_that_drops_the_question_ranks_last(tiny_llama, tok):
    """Must-hold 5 on a tiny Llama taught the qa format: without the question the sum is a guess."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    val = [chat(r) for r in qa_rows(24, seed=100)]
    before = compare_templates(model, tok, [GOOD], val, task="sft")["templates"][0]["answer_perplexity"]
    _train(model, tok, qa_rows(200, seed=0))
    model.train()
    result = compare_templates(model, tok, [NO_QUESTION, GOOD, QA], val, task="sft")
    assert model.training  # the mode is restored
    names = [t["name"] for t in result["templates"]]
    assert names[-1] == "no_question", format_table(result)
    ppl = {t["name"]: t["answer_perplexity"] for t in result["templates"]}
    assert ppl["good"] < before / 10  # the model did learn the format
    assert ppl["no_question"] > 1.3 * ppl["good"], ppl  # 1.4x to 3x over torch seeds 0-4
    assert result["metric"] == "answer_perplexity" and result["higher_is_better"] is False
    assert [t["rank"] for t in result["templates"]] == [1, 2, 3]


def _fake_scorer(monkeypatch, tok, score):
    """Replace token_logprobs by ``score(prompt_text, continuation_ids) -> per-token log-prob``."""
    calls = []

    def fake(model, pad_id, prompts, continuations, *, batch_size, precision):
        calls.append((list(map(list, prompts)), list(map(list, continuations))))
        return [
            np.full(len(c), score(tok.decode(p), list(c)), dtype=np.float64)
            for p, c in zip(prompts, continuations, strict=True)
        ]

    monkeypatch.setattr(compare_mod, "token_logprobs", fake)
    return calls


SFT_ROWS = [chat(r) for r in qa_rows(6, seed=3)]


def test_answers_are_ranked_by_pooled_perplexity_and_end_with_im_end(monkeypatch, model, tok):
    # a stub scorer: a longer prompt makes the answer likelier
    calls = _fake_scorer(monkeypatch, tok, lambda prompt, cont: -10.0 / len(prompt))
    templates = [
        PromptConfig(name="short", template="{{ input }}"),
        PromptConfig(name="long", template="Please answer this question: {{ input }}"),
        PromptConfig(name="mid", template="Q: {{ input }}"),
    ]
    result = compare_templates(model, tok, templates, SFT_ROWS, task="sft")
    assert [t["name"] for t in result["templates"]] == ["long", "mid", "short"]
    assert result["n_rows"] == 6 and all(t["n"] == 6 for t in result["templates"])
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    for _, conts in calls:  # each answer, no BOS, then <|im_end|>: the same for every template
        assert all(c[-1] == im_end and c[0] != tok.bos_token_id for c in conts)
        assert conts == calls[0][1]
    answer = tok(SFT_ROWS[0]["messages"][1]["content"], add_special_tokens=False)["input_ids"]
    assert calls[0][1][0] == [*answer, im_end]
    # pooled over tokens: exp(mean NLL) where every token has the same log-prob here
    prompts = calls[0][0]
    tokens = [len(c) for c in calls[0][1]]
    nll = sum(10.0 / len(tok.decode(p)) * n for p, n in zip(prompts, tokens, strict=True))
    short = next(t for t in result["templates"] if t["name"] == "short")
    assert short["answer_perplexity"] == pytest.approx(np.exp(nll / sum(tokens)))
    assert short["answer_tokens"] == sum(tokens)


def test_rouge_l_of_generated_answers(monkeypatch, model, tok):
    _fake_scorer(monkeypatch, tok, lambda prompt, cont: -1.0)
    refs = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in SFT_ROWS}

    def generate(prompt_ids):  # right for the template that says "Q:", wrong otherwise
        out = []
        for ids in prompt_ids:
            text = tok.decode(ids)
            question = next(q for q in refs if q in text)
            out.append(refs[question] if "Q:" in text else "no idea at all")
        return out

    templates = [
        PromptConfig(name="plain", template="{{ input }}"),
        PromptConfig(name="q", template="Q: {{ input }}"),
    ]
    result = compare_templates(model, tok, templates, SFT_ROWS, task="sft", generate_fn=generate)
    rouge = {t["name"]: t["rouge_l"] for t in result["templates"]}
    assert rouge == {"plain": 0.0, "q": 1.0}


def test_labels_are_predicted_by_their_summed_log_likelihood(monkeypatch, model, tok):
    label_of = {}
    for lab in ("good", "bad"):
        label_of[tuple(tok(lab, add_special_tokens=False)["input_ids"] + end_ids(tok))] = lab

    # the label whose word the prompt holds is likelier; the sum over its tokens decides
    calls = _fake_scorer(
        monkeypatch, tok, lambda p, c: -0.1 if f" {label_of[tuple(c)]} " in f" {p} " else -3.0
    )
    rows = [
        {"text": "a good film", "label": "good"},
        {"text": "a bad film", "label": "bad"},
        {"text": "so bad", "label": "bad"},
        {"text": "bad plot but good cast", "label": "good"},
    ]
    templates = [
        PromptConfig(name="no_input", template="Pick one of: {{ labels | join(', ') }}."),
        PromptConfig(name="with_input", template="Review: {{ input }}\nLabel:"),
    ]
    result = compare_templates(model, tok, templates, rows, task="classification", labels=["bad", "good"])
    assert result["metric"] == "accuracy" and result["higher_is_better"] is True
    acc = {t["name"]: t["accuracy"] for t in result["templates"]}
    # with_input: row 4 ties -> the first label, "bad": wrong. no_input: every row ties -> "bad".
    assert acc == {"with_input": 0.75, "no_input": 0.5}
    assert [t["name"] for t in result["templates"]] == ["with_input", "no_input"]
    assert len(calls[0][0]) == len(rows) * 2  # every label scored for every row
    # labels default to those of the rows, sorted
    again = compare_templates(model, tok, templates[1:], rows, task="classification")
    assert again["templates"][0]["accuracy"] == 0.75
    with pytest.raises(ValueError, match=r"\['bad'\] are not among the labels"):
        compare_templates(model, tok, templates, rows, task="classification", labels=["good", "meh"])


def test_accuracy_ties_are_broken_by_the_gold_label_likelihood(monkeypatch, model, tok):
    _fake_scorer(monkeypatch, tok, lambda p, c: -1.0 if "sure" in p else -2.0)
    rows = [{"text": "x", "label": "a"}, {"text": "y", "label": "a"}]
    templates = [
        PromptConfig(name="unsure", template="{{ input }}"),
        PromptConfig(name="sure", template="sure {{ input }}"),
    ]
    result = compare_templates(model, tok, templates, rows, task="classification", labels=["a", "b"])
    assert [t["accuracy"] for t in result["templates"]] == [1.0, 1.0]
    assert [t["name"] for t in result["templates"]] == ["sure", "unsure"]


def test_a_template_failing_on_a_row_names_the_template_and_the_row(monkeypatch, model, tok):
    _fake_scorer(monkeypatch, tok, lambda p, c: -1.0)
    rows = [chat({"prompt": p, "response": "r"}) for p in ["one", "two", "boom", "four"]]
    fragile = PromptConfig(
        name="fragile", template="{{ input }}{% if input == 'boom' %}{{ nope }}{% endif %}"
    )
    with pytest.raises(PromptError, match=r"row 2: template 'fragile' \(generate\.compare\[1\]\).*'nope'"):
        compare_templates(model, tok, [GOOD, fragile], rows, task="sft")
    empty = PromptConfig(name="empty", template="{% if input != 'two' %}{{ input }}{% endif %}")
    with pytest.raises(PromptError, match=r"row 1: template 'empty'.*renders empty"):
        compare_templates(model, tok, [empty], rows, task="sft")


def test_few_shot_examples_come_from_the_train_rows(monkeypatch, model, tok):
    calls = _fake_scorer(monkeypatch, tok, lambda p, c: -1.0)
    shot = PromptConfig(
        name="shot",
        template="{% for e in examples %}{{ e.input }} => {{ e.output }}\n{% endfor %}{{ input }}",
        few_shot=FewShotConfig(k=2),
    )
    train = [chat({"prompt": f"train q{i}", "response": f"train a{i}"}) for i in range(5)]
    with pytest.raises(ValueError, match="needs train rows"):
        compare_templates(model, tok, [shot], SFT_ROWS, task="sft")
    compare_templates(model, tok, [shot], SFT_ROWS, task="sft", train_rows=train, seed=1)
    texts = [tok.decode(p) for p in calls[0][0]]
    assert all(t.count(" => train a") == 2 for t in texts)
    assert len(set(texts[0].split("\n")[1:3])) == 2


def test_unsupported_tasks_and_empty_inputs_are_errors(model, tok):
    with pytest.raises(ValueError, match="not 'regression'"):
        compare_templates(model, tok, [GOOD], SFT_ROWS, task="regression")
    with pytest.raises(ValueError, match="no templates"):
        compare_templates(model, tok, [], SFT_ROWS, task="sft")
    with pytest.raises(ValueError, match="no validation rows"):
        compare_templates(model, tok, [GOOD], [], task="sft")


def test_format_table_lists_templates_best_first():
    result = {
        "metric": "answer_perplexity",
        "higher_is_better": False,
        "n_rows": 12,
        "templates": [
            {"name": "good", "template_hash": "aaaaaaaaaaaa", "n": 12, "answer_perplexity": 2.5, "rank": 1},
            {
                "name": "no_question",
                "template_hash": "bbbbbbbbbbbb",
                "n": 12,
                "answer_perplexity": 31.25,
                "rank": 2,
            },
        ],
    }
    lines = format_table(result).splitlines()
    assert lines[0] == "2 templates on 12 validation rows, ranked by answer_perplexity (lower is better)"
    assert lines[1].split() == ["rank", "name", "answer_perplexity", "n", "hash"]
    assert lines[2].split() == ["1", "good", "2.5", "12", "aaaaaaaaaaaa"]
    assert lines[3].split() == ["2", "no_question", "31.25", "12", "bbbbbbbbbbbb"]
    assert len({line.index("answer_perplexity") for line in lines[1:2]}) == 1
    assert lines[2].index("2.5") == lines[1].index("answer_perplexity")  # columns line up
    result["templates"][0]["rouge_l"] = 0.5
    assert "rouge_l" in format_table(result).splitlines()[1]
    assert format_table(result).splitlines()[3].split()[3] == "-"  # a metric a template lacks
