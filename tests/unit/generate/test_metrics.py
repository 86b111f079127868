"""Diversity and quality metrics against values computed by hand on hand-made texts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunelab.generate.config import DIVERSITY_METRICS
from tunelab.generate.embed import embed, load_embedder
from tunelab.generate.metrics import (
    distinct_n,
    diversity,
    embedding_similarity,
    encode_pairs,
    higher_is_more_diverse,
    mean_cosine,
    per_prompt_diversity,
    perplexity,
    repetition_rate,
    rouge_l_mean,
    self_bleu,
    token_entropy,
    words,
)


def test_words_lowercases_and_splits_punctuation() -> None:
    assert words("Hello, World!  It's") == ["hello", ",", "world", "!", "it", "'", "s"]


def test_distinct_n_by_hand() -> None:
    texts = ["a b a b", "a c"]
    # unigrams a b a b | a c: 6 in all, distinct {a, b, c} = 3 -> 3/6
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    # bigrams (a b) (b a) (a b) | (a c): 4, distinct 3 -> 3/4 (none spans the two texts)
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    # trigrams (a b a) (b a b) | none: 2 of 2 distinct
    assert distinct_n(texts, 3) == 1.0
    assert distinct_n(["A, a"], 1) == pytest.approx(2 / 3)  # a , a: case folded, the comma a token
    assert distinct_n([], 1) == 0.0 and distinct_n(["a"], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(texts, 0)


def test_entropy_by_hand() -> None:
    assert token_entropy(["a b", "c d"]) == pytest.approx(2.0)  # 4 equally likely words: log2 4
    # p = 2/3, 1/3: -(2/3 log2 2/3 + 1/3 log2 1/3) = log2 3 - 2/3
    assert token_entropy(["a a b"]) == pytest.approx(math.log2(3) - 2 / 3)
    assert token_entropy(["x x x"]) == 0.0 and token_entropy([]) == 0.0 and token_entropy([""]) == 0.0


def test_repetition_rate_by_hand() -> None:
    # bigrams xy yx xy yx xy: the last 3 repeat earlier ones -> 3/5
    assert repetition_rate(["x y x y x y"], n=2) == pytest.approx(3 / 5)
    # pooled: 3 repeats over 5 + 2 bigrams; "a b c" repeats none
    assert repetition_rate(["x y x y x y", "a b c"], n=2) == pytest.approx(3 / 7)
    # default n=4: abcd bcda cdab dabc abcd -> 1/5; a repeat in another text does not count
    assert repetition_rate(["a b c d a b c d"]) == pytest.approx(1 / 5)
    assert repetition_rate(["a b c d", "a b c d"]) == 0.0
    assert repetition_rate(["a b c"]) == 0.0 and repetition_rate([]) == 0.0


def test_self_bleu_by_hand() -> None:
    assert self_bleu(["the cat sat on the mat"] * 3) == pytest.approx(1.0)
    assert self_bleu(["a b c", "d e f", "g h"]) == 0.0  # no shared unigram: p1 = 0
    # "a b" vs ["a b c"]: p1 = 2/2, p2 = 1/1 (orders 3-4 have no n-grams: effective order 2),
    #   brevity penalty exp(1 - 3/2) -> exp(-0.5)
    # "a b c" vs ["a b"]: p1 = 2/3, p2 = 1/2, p3 = 0/1 smoothed ('exp') to 1/(2 * 1); BP = 1
    #   -> (2/3 * 1/2 * 1/2) ** (1/3) = (1/6) ** (1/3)
    assert self_bleu(["a b", "A B c"]) == pytest.approx((math.exp(-0.5) + (1 / 6) ** (1 / 3)) / 2)
    assert self_bleu(["a b c"]) is None and self_bleu([]) is None
    assert self_bleu(["", "a b", "  "]) is None  # texts with no words are left out
    assert self_bleu(["", "a b", "a b"]) == pytest.approx(1.0)


def test_self_bleu_samples_hypotheses_above_the_cap() -> None:
    # the copies score 1 each, the odd one 0 (no word shared): all four hypotheses -> 3/4
    texts = ["a b c d"] * 3 + ["x y z w"]
    assert self_bleu(texts) == pytest.approx(3 / 4)
    # one sampled hypothesis (still against all the others) scores 1 or 0, never the full mean
    sampled = {round(self_bleu(texts, max_hypotheses=1, seed=s), 6) for s in range(8)}
    assert sampled == {0.0, 1.0}  # the seed picks which
    assert self_bleu(texts, max_hypotheses=1, seed=3) == self_bleu(texts, max_hypotheses=1, seed=3)


def test_mean_cosine_by_hand() -> None:
    # unit rows [1,0], [0,1], [1,1]/sqrt2: cosines 0, 1/sqrt2, 1/sqrt2 -> mean sqrt2/3
    assert mean_cosine(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])) == pytest.approx(math.sqrt(2) / 3)
    assert mean_cosine(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0)
    assert mean_cosine(np.zeros((1, 3))) is None


def test_embedder_unit_rows_padding_ignored(tiny_bert) -> None:
    emb = load_embedder(str(tiny_bert))
    assert load_embedder(str(tiny_bert)) is emb  # cached per process
    short, long_ = "what plus", "the film is really great and wonderful it is"
    vecs = embed([short, long_, short], embedder=emb)
    assert vecs.shape == (3, 32) and vecs.dtype == np.float32
    assert np.linalg.norm(vecs, axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    # mean over real tokens only: padding the short text in a batch with the long one changes nothing
    assert vecs[0] == pytest.approx(embed([short], embedder=emb)[0], abs=1e-5)
    assert embed([], embedder=emb).shape == (0, 32)


def test_embedding_similarity(tiny_bert) -> None:
    emb = load_embedder(str(tiny_bert))
    assert embedding_similarity(["the film was great"] * 3, embedder=emb) == pytest.approx(1.0, abs=1e-5)
    a, b = "the film was great", "what is 7 plus 3 ?"
    ab = embedding_similarity([a, b], embedder=emb)
    assert ab == pytest.approx(embedding_similarity([b, a], embedder=emb), abs=1e-6)
    assert -1.0 <= ab < 1.0 - 1e-4
    assert embedding_similarity([a], embedder=emb) is None


def test_diversity_names_and_directions() -> None:
    texts = ["a b a b", "a c"]
    out = diversity(texts, include_embedding=False)
    assert tuple(out) == DIVERSITY_METRICS
    assert out["distinct_1"] == pytest.approx(0.5) and out["distinct_2"] == pytest.approx(0.75)
    assert out["self_bleu"] == self_bleu(texts) and out["entropy"] == token_entropy(texts)
    assert out["repetition_rate"] == repetition_rate(texts) and out["embedding_similarity"] is None
    assert [n for n in DIVERSITY_METRICS if not higher_is_more_diverse(n)] == [
        "self_bleu",
        "repetition_rate",
        "embedding_similarity",
    ]
    with pytest.raises(ValueError, match="distinct_1"):
        higher_is_more_diverse("distinct_9")


def test_per_prompt_diversity_within_and_across(tiny_bert) -> None:
    emb = load_embedder(str(tiny_bert))
    groups = [["a b", "a b"], ["c d"]]
    out = per_prompt_diversity(groups, embedder=emb)
    within, across = out["within"], out["across"]
    # distinct-1: group 1 2/4, group 2 2/2 -> mean 3/4; all together {a b c d} of 6 -> 2/3
    assert within["distinct_1"] == pytest.approx(0.75) and across["distinct_1"] == pytest.approx(2 / 3)
    # self-BLEU: group 1 identical -> 1, group 2 one sample -> None (left out); across (1 + 1 + 0) / 3
    assert within["self_bleu"] == pytest.approx(1.0) and across["self_bleu"] == pytest.approx(2 / 3)
    assert within["embedding_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert across["embedding_similarity"] == pytest.approx(
        embedding_similarity(["a b", "a b", "c d"], embedder=emb), abs=1e-6
    )
    assert per_prompt_diversity([["x"]], include_embedding=False)["within"]["self_bleu"] is None


def test_perplexity_matches_the_logits(tiny_llama) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    questions = ["what is 2 plus 3 ?", "the film", "what is 9 plus 9 ? really quite"]
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in questions
    ]
    outputs = ["it is 5 .", "was great and really moving", "18"]
    p_ids, o_ids = encode_pairs(tok, prompts, outputs)
    assert p_ids[0] == tok(prompts[0], add_special_tokens=False)["input_ids"]
    nll, count = 0.0, 0
    with torch.no_grad():
        for p, o in zip(p_ids, o_ids, strict=True):
            logp = torch.log_softmax(model(torch.tensor([p + o])).logits[0].float(), -1)
            # the token at position len(p) + k is predicted by the logits at len(p) + k - 1
            nll -= sum(float(logp[len(p) + k - 1, t]) for k, t in enumerate(o))
            count += len(o)
    got = perplexity(
        model, tok.pad_token_id, p_ids, o_ids, batch_size=2
    )  # batches pad rows of unequal length
    assert got == pytest.approx(math.exp(nll / count), rel=1e-4)
    assert perplexity(model, tok.pad_token_id, p_ids, [[], [], []]) is None
    with pytest.raises(ValueError, match="empty prompt"):
        perplexity(model, tok.pad_token_id, [[]], [o_ids[0]])


def test_rouge_l_mean() -> None:
    assert rouge_l_mean(["the cat sat", "apple banana"], ["the cat sat", "cherry grape"]) == pytest.approx(
        0.5
    )
    with pytest.raises(ValueError):
        rouge_l_mean([], [])


@pytest.mark.slow
def test_bundled_minilm_ranks_a_paraphrase_above_an_unrelated_text() -> None:
    vecs = embed(
        ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply."]
    )
    assert vecs.shape == (3, 384) and load_embedder() is load_embedder("minilm")
    assert vecs[0] @ vecs[1] > 0.6 > 0.2 > vecs[0] @ vecs[2]
