"""Batched generation with the tiny Llama: batch independence, seeding, samples, stops, limits."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from tunelab.config.decoding import DecodingConfig
from tunelab.models.decoding import Sample, _check_context, _sample, eos_ids, generate, generation_config

TEXTS = [
    "the movie was great",
    "bad",
    "a long and winding review of a film that nobody asked for at all",
    "fun fun",
    "it was not what i expected from the trailer",
    "ok",
    "the acting is wooden and the plot drags",
    "brilliant",
]


@pytest.fixture(scope="module")
def llama(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def prompts(llama):
    _, tok = llama
    ids = [tok(t)["input_ids"] for t in TEXTS]
    assert len({len(p) for p in ids}) >= 5  # prompts of different lengths: padding matters
    return ids


GREEDY = DecodingConfig(temperature=0, max_new_tokens=12)
SAMPLED = DecodingConfig(temperature=1.0, max_new_tokens=12)


def ids_of(samples: list[list[Sample]]) -> list[list[list[int]]]:
    return [[s.token_ids for s in group] for group in samples]


def test_greedy_is_deterministic(llama, prompts):
    model, tok = llama
    a, _ = generate(model, tok, prompts, GREEDY, seed=0)
    b, _ = generate(model, tok, prompts, GREEDY, seed=123)  # the seed does not matter for greedy
    assert ids_of(a) == ids_of(b)
    assert all(len(g) == 1 and g[0].n_tokens == len(g[0].token_ids) > 0 for g in a)


def test_greedy_alone_equals_greedy_in_a_batch_of_8(llama, prompts):
    model, tok = llama
    batched, stats = generate(model, tok, prompts, GREEDY, seed=0, batch_size=8)
    assert stats["batches"] == 1
    for i, p in enumerate(prompts):
        alone, _ = generate(model, tok, [p], GREEDY, seed=0)
        assert alone[0][0].token_ids == batched[i][0].token_ids, f"prompt {i} ({len(p)} tokens)"
    # outputs come back in the caller's order, not the length-sorted one
    assert len({tuple(g[0].token_ids) for g in batched}) > 1


def test_order_is_kept_across_several_batches(llama, prompts):
    model, tok = llama
    one, _ = generate(model, tok, prompts, GREEDY, seed=0, batch_size=8)
    three, stats = generate(model, tok, prompts, GREEDY, seed=0, batch_size=3)
    assert stats["batches"] == 3
    assert ids_of(one) == ids_of(three)


def test_same_seed_same_samples_other_seed_other_samples(llama, prompts):
    model, tok = llama
    torch.manual_seed(999)  # process state must not matter
    a, _ = generate(model, tok, prompts, SAMPLED, seed=7, batch_size=3)
    torch.rand(10)
    b, _ = generate(model, tok, prompts, SAMPLED, seed=7, batch_size=3)
    c, _ = generate(model, tok, prompts, SAMPLED, seed=8, batch_size=3)
    assert ids_of(a) == ids_of(b)
    assert ids_of(a) != ids_of(c)


def test_each_batch_draws_under_its_own_seed(llama, prompts):
    model, tok = llama
    got, stats = generate(model, tok, [prompts[0]] * 4, SAMPLED, seed=3, batch_size=2)
    assert stats["batches"] == 2
    # two identical batches: the same seed in both would give the same draws
    assert [s.token_ids for g in got[:2] for s in g] != [s.token_ids for g in got[2:] for s in g]


def test_generate_leaves_the_global_rng_alone(llama, prompts):
    model, tok = llama
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    generate(model, tok, prompts[:2], SAMPLED, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_num_samples_gives_that_many_per_prompt(llama, prompts):
    model, tok = llama
    got, stats = generate(model, tok, prompts[:4], SAMPLED, seed=0, num_samples=3)
    assert [len(g) for g in got] == [3, 3, 3, 3]
    assert any(len({tuple(s.token_ids) for s in g}) > 1 for g in got)  # sampled, so they differ
    assert stats["new_tokens"] == sum(s.n_tokens for g in got for s in g)
    assert stats["tokens_per_s"] > 0 and stats["seconds"] > 0
    greedy, _ = generate(model, tok, prompts[:2], GREEDY, seed=0, num_samples=3)
    assert all(len(g) == 3 and len({tuple(s.token_ids) for s in g}) == 1 for g in greedy)


def test_stop_strings_cut_the_output(llama, prompts):
    model, tok = llama
    free, _ = generate(model, tok, prompts, GREEDY, seed=0)
    # a stop string the free run produces in its middle: two alphanumeric characters after the first two
    i, text = next((i, g[0].text) for i, g in enumerate(free) if sum(c.isalnum() for c in g[0].text[2:]) >= 2)
    k = next(k for k in range(2, len(text) - 1) if text[k : k + 2].isascii() and text[k : k + 2].isalnum())
    stop = text[k : k + 2]
    cut, _ = generate(model, tok, prompts[i : i + 1], GREEDY.model_copy(update={"stop": [stop]}), seed=0)
    s = cut[0][0]
    assert s.text == text[: text.index(stop)]
    assert stop not in s.text
    assert s.finish_reason == "stop"
    assert s.n_tokens < free[i][0].n_tokens
    assert s.token_ids == free[i][0].token_ids[: s.n_tokens]  # cut right after the stop string
    assert stop in tok.decode(s.token_ids, skip_special_tokens=True)


def test_finish_reason_is_length_when_max_new_tokens_is_hit(llama, prompts):
    model, tok = llama
    got, _ = generate(model, tok, prompts, DecodingConfig(temperature=0, max_new_tokens=5), seed=0)
    for g in got:
        if g[0].finish_reason == "length":
            assert g[0].n_tokens == 5
    assert any(g[0].finish_reason == "length" for g in got)


def test_sample_rows_ending_with_eos_or_padding():
    class Tok:
        def decode(self, ids, skip_special_tokens=True):
            return "".join("" if (i == 2 and skip_special_tokens) else chr(96 + i) for i in ids)

    # eos (2) ends the row; what follows it is padding
    s = _sample(Tok(), [5, 6, 2, 2, 2], {2}, 2, [], 5)
    assert (s.token_ids, s.text, s.finish_reason) == ([5, 6, 2], "ef", "stop")
    # pad (9) distinct from eos: trailing padding is dropped, the row ended early
    s = _sample(Tok(), [5, 6, 7, 9, 9], {2}, 9, ["g"], 5)
    assert (s.token_ids, s.text, s.finish_reason) == ([5, 6, 7], "ef", "stop")
    s = _sample(Tok(), [5, 6, 7], {2}, 2, [], 3)
    assert s.finish_reason == "length"


def test_max_new_tokens_beyond_the_context_raises(llama, prompts):
    model, tok = llama
    n_ctx = model.config.max_position_embeddings
    longest = max(len(p) for p in prompts)
    too_many = DecodingConfig(temperature=0, max_new_tokens=n_ctx - longest + 1)
    with pytest.raises(ValueError, match=r"generate\.decoding\.max_new_tokens") as err:
        generate(model, tok, prompts, too_many, seed=0)
    assert str(n_ctx) in str(err.value) and str(longest) in str(err.value)
    _check_context(model, prompts, n_ctx - longest)  # the boundary fits (no need to generate 200+ tokens)


def test_temperature_zero_sets_no_sampling_flags(llama, caplog):
    _, tok = llama
    cfg = DecodingConfig(temperature=0, top_p=0.9, top_k=20, min_p=0.1, typical_p=0.9, num_samples=4)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        gc = generation_config(cfg, tok)
    assert gc.do_sample is False
    assert (gc.temperature, gc.top_p, gc.top_k, gc.min_p, gc.typical_p) == (None,) * 5
    assert gc.num_return_sequences == 1
    assert not caught and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_sampling_config_and_eos_list(llama):
    _, tok = llama
    gc = generation_config(DecodingConfig(temperature=0.8, top_p=0.9, stop=["\n\n"]), tok, num_samples=5)
    assert gc.do_sample is True and gc.temperature == 0.8 and gc.top_p == 0.9
    assert gc.top_k == 0  # unset top_k is disabled, not HF's default of 50
    assert gc.num_return_sequences == 5 and gc.max_new_tokens == 64 and gc.use_cache is True
    assert gc.stop_strings == ["\n\n"]
    assert tok.convert_tokens_to_ids("<|im_end|>") in eos_ids(tok)
    assert gc.pad_token_id == tok.pad_token_id
