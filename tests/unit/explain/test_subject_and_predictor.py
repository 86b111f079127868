"""Tokens to words, and the shared batched predictor: batching, padding and de-duplication change
nothing but the number of forward passes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from tunelab.explain.faithfulness import example_faithfulness, kendall_tau, summarise, top_k_sizes
from tunelab.explain.predictor import Predictor
from tunelab.explain.subject import NO_WORD, causal_subject, classifier_subject


@pytest.fixture(scope="module")
def bert(tiny_bert):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3).eval()
    return model, AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(tiny_llama)


def test_wordpiece_pieces_join_into_words_and_specials_belong_to_none(bert):
    _, tok = bert
    s = classifier_subject(tok, "the plot is lifeless and tedious ?", max_length=32)
    assert s.tokens[0] == "[CLS]" and s.tokens[-1] == "[SEP]"
    assert s.word_of[0] == NO_WORD and s.word_of[-1] == NO_WORD
    assert s.words == ["the", "plot", "is", "lifeless", "and", "tedious", "?"]
    pieces = [t for t, w in zip(s.tokens, s.word_of, strict=True) if w == 3]
    assert len(pieces) >= 1 and "".join(p.removeprefix("##") for p in pieces) == "lifeless"
    scores = np.arange(len(s.ids), dtype=float)
    assert s.word_scores(scores)[3] == sum(scores[i] for i, w in enumerate(s.word_of) if w == 3)
    assert not s.truncated
    unknown = classifier_subject(tok, "dull ☃ plot", max_length=32)  # ☃ is not in the vocabulary
    assert unknown.words == ["dull", "☃", "plot"] and "[UNK]" in unknown.tokens


def test_a_long_text_is_truncated_and_says_so(bert):
    _, tok = bert
    s = classifier_subject(tok, " ".join(["the film"] * 40), max_length=16)
    assert s.truncated and len(s.ids) == 16 and s.tokens[-1] == "[SEP]"
    with pytest.raises(ValueError, match="empty text"):
        classifier_subject(tok, "  \n ", max_length=16)


def test_bpe_words_of_a_chat_prompt_leave_out_the_template_and_the_answer(llama):
    _, tok = llama
    s = causal_subject(tok, "what is 2 plus 3 ?", " it is 5 .", max_length=64, chat=True)
    assert s.words == ["what", "is", "2", "plus", "3", "?"]  # no leading-space pieces, no template
    assert s.source[s.text_offset : s.text_offset + len(s.text)] == s.text
    assert all(w == NO_WORD for w in s.word_of[s.n_prompt :])  # the answer is never ranked
    assert s.ids[: s.n_prompt] == tok(s.source, add_special_tokens=False)["input_ids"]
    assert s.ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 2  # user + assistant, no extra BOS
    cut = causal_subject(tok, " ".join(["plus"] * 60) + " 3 ?", " it is 5 .", max_length=24, chat=True)
    assert cut.truncated and len(cut.ids) == 24 and cut.words[-1] == "?"  # cut from the left


def test_batched_class_scores_equal_one_at_a_time(bert):
    model, tok = bert
    texts = ["the plot is lifeless", "a wonderful and moving story", "dull", "the cast was quite charming"]
    ids = tok(texts)["input_ids"]
    p = Predictor(model, tok, kind="classifier", batch_size=3)
    batched = p.class_scores(ids + ids[:2])  # repeats are scored once
    assert p.rows == len(texts) and p.passes == 2
    single = np.stack([Predictor(model, tok, kind="classifier").class_scores([i])[0] for i in ids])
    np.testing.assert_allclose(batched[: len(texts)], single, atol=1e-5)
    np.testing.assert_allclose(batched[len(texts) :], single[:2], atol=1e-5)
    np.testing.assert_allclose(batched.sum(1), 1.0, atol=1e-5)


def test_left_padded_answer_logprobs_equal_unpadded(llama):
    model, tok = llama
    answer = tok(" it is 5 .", add_special_tokens=False)["input_ids"]
    prompts = [
        tok("what is 2 plus 3 ?")["input_ids"],
        tok("plus")["input_ids"],
        tok("what is 9 ?")["input_ids"],
    ]
    p = Predictor(model, tok, kind="causal", batch_size=8)
    batched = p.answer_logprobs(prompts, answer)
    assert batched.shape == (3, len(answer))
    for prompt, row in zip(prompts, batched, strict=True):
        full = torch.tensor([prompt + answer])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=full).logits[0].float(), -1)
        expect = [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer)]
        np.testing.assert_allclose(row, expect, atol=1e-4)
    assert np.allclose(p.scores(prompts, answer=answer), batched.sum(1))


class _Additive:
    """A stand-in predictor whose output is the sum of fixed per-token weights (known ground truth)."""

    def __init__(self, weights: dict[int, float]) -> None:
        self.weights = weights

    def scores(self, variants, target=0, answer=()):
        return np.array([sum(self.weights.get(t, 0.0) for t in v) for v in variants])


def test_comprehensiveness_and_sufficiency_reward_the_true_ordering():
    from tunelab.explain.subject import Subject

    words = [f"w{i}" for i in range(20)]
    subject = Subject(
        text=" ".join(words),
        source=" ".join(words),
        text_offset=0,
        ids=list(range(1, 21)),
        tokens=words,
        word_of=list(range(20)),
        words=words,
        word_spans=[(0, 1)] * 20,
        n_prompt=20,
    )
    weights = {i + 1: float(i) for i in range(20)}  # word i carries weight i
    cfg = SimpleNamespace(fractions=[0.05, 0.1, 0.2], random_repeats=5)
    ctx = SimpleNamespace(predictor=_Additive(weights), cfg=cfg, seed=0)
    truth, reverse = np.arange(20, dtype=float), -np.arange(20, dtype=float)
    got = example_faithfulness(ctx, subject, {"truth": truth, "reverse": reverse})
    assert top_k_sizes(20, cfg.fractions) == [1, 2, 4]
    assert got["truth"]["comprehensiveness"] == pytest.approx(np.mean([19, 19 + 18, 19 + 18 + 17 + 16]))
    assert (
        got["truth"]["comprehensiveness"]
        > got["random"]["comprehensiveness"]
        > got["reverse"]["comprehensiveness"]
    )
    assert got["truth"]["sufficiency"] < got["random"]["sufficiency"] < got["reverse"]["sufficiency"]
    summary = summarise([got], [{"truth": truth, "reverse": reverse}])
    assert (
        summary["methods"]["truth"]["beats_random"] == 1.0
        and summary["methods"]["reverse"]["beats_random"] == 0.0
    )
    assert summary["agreement"][0]["kendall_tau"] == pytest.approx(-1.0)
    assert kendall_tau(np.ones(5), np.arange(5.0)) is None  # a constant scoring has no rank order
