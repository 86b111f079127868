"""Layer-wise analysis: pooled states, probes, CKA and the logit lens on tiny models."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from tests.helpers import FILLER

from tunelab.explain.layers import (
    cka_by_layer,
    layer_states,
    lens_logits,
    linear_cka,
    logit_lens,
    probe_by_layer,
)


def planted_rows(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Texts whose label is decided by one planted word among random fillers."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = rng.choices(FILLER, k=rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), "great" if label else "awful")
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def batches(tokenizer, texts: list[str], size: int = 16, side: str = "right") -> list[dict]:
    tokenizer.padding_side = side
    return [
        tokenizer(texts[i : i + size], padding=True, return_tensors="pt") for i in range(0, len(texts), size)
    ]


def pad(batch: dict, extra: int, pad_id: int, side: str) -> dict:
    """The batch with ``extra`` more pad tokens on one side (mask 0 there)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pad_ids = torch.full((ids.shape[0], extra), pad_id, dtype=ids.dtype)
    zeros = torch.zeros((ids.shape[0], extra), dtype=mask.dtype)
    if side == "left":
        return {"input_ids": torch.cat([pad_ids, ids], 1), "attention_mask": torch.cat([zeros, mask], 1)}
    return {"input_ids": torch.cat([ids, pad_ids], 1), "attention_mask": torch.cat([mask, zeros], 1)}


@pytest.fixture(scope="module")
def bert(tiny_bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    return model, AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def llama(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = _with_random_norm(AutoModelForCausalLM.from_pretrained(tiny_llama))
    return model, AutoTokenizer.from_pretrained(tiny_llama)


def _with_random_norm(model):
    """Non-unit final-norm weights: with the default ones an RMSNorm applied twice is (nearly) a no-op,
    so a lens that normed the already-normed last state would go unnoticed."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.model.norm.weight.copy_(0.5 + torch.rand(model.model.norm.weight.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def bert_states(bert):
    model, tok = bert
    texts, _ = planted_rows(48)
    return layer_states(model, batches(tok, texts))


# --- layer_states -------------------------------------------------------------------------------------


def test_layer_states_shapes_and_eval_mode(bert, bert_states):
    model, tok = bert
    assert len(bert_states) == model.config.num_hidden_layers + 1
    assert all(s.shape == (48, model.config.hidden_size) and s.dtype == np.float32 for s in bert_states)
    model.train()  # dropout would make two runs differ; layer_states must switch it off and restore the mode
    texts, _ = planted_rows(48)
    again = layer_states(model, batches(tok, texts, size=7))
    assert model.training
    model.eval()
    for a, b in zip(bert_states, again, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_auto_pooling_is_mean_for_encoders_and_last_for_causal_lms(bert, bert_states, llama):
    model, tok = bert
    texts, _ = planted_rows(48)
    mean = layer_states(model, batches(tok, texts), pooling="mean")
    cls = layer_states(model, batches(tok, texts), pooling="cls")
    np.testing.assert_allclose(mean[1], bert_states[1], atol=1e-6)
    assert not np.allclose(cls[1], bert_states[1], atol=1e-3)
    lm, ltok = llama
    auto = layer_states(lm, batches(ltok, texts[:8]))
    last = layer_states(lm, batches(ltok, texts[:8]), pooling="last")
    np.testing.assert_allclose(auto[-1], last[-1], atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        layer_states(model, batches(tok, texts[:4]), pooling="max")


def test_mean_pooling_ignores_extra_padding(bert):
    model, tok = bert
    texts, _ = planted_rows(8)
    (batch,) = batches(tok, texts)
    plain = layer_states(model, [batch], pooling="mean")
    padded = layer_states(model, [pad(batch, 5, tok.pad_token_id, "right")], pooling="mean")
    for a, b in zip(plain, padded, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_pooling_uses_last_real_token(llama, side):
    model, tok = llama
    texts, _ = planted_rows(6, seed=3)
    # each example alone (no padding) is the reference
    alone = [layer_states(model, batches(tok, [t]), pooling="last") for t in texts]
    (batch,) = batches(tok, texts, side=side)
    assert (batch["attention_mask"] == 0).any()  # the texts really differ in length
    padded = layer_states(model, [pad(batch, 3, tok.pad_token_id, side)], pooling="last")
    for layer, states in enumerate(padded):
        reference = np.concatenate([a[layer] for a in alone])
        np.testing.assert_allclose(states, reference, atol=1e-4)


# --- probes ------------------------------------------------------------------------------------------


def test_probe_finds_planted_token_above_majority(bert):
    model, tok = bert
    train_x, train_y = planted_rows(96, seed=1)
    val_x, val_y = planted_rows(40, seed=2)
    val_y[:6] = [0] * 6  # make the majority line differ from 0.5 to catch a wrong baseline
    train = layer_states(model, batches(tok, train_x))
    val = layer_states(model, batches(tok, val_x))
    result = probe_by_layer(train, train_y, val, val_y)
    assert [r["layer"] for r in result] == list(range(model.config.num_hidden_layers + 1))
    assert all(r["majority"] == pytest.approx(np.mean(np.asarray(val_y) == 0)) for r in result)
    assert max(r["accuracy"] for r in result) > result[0]["majority"] + 0.3


def test_probe_rejects_single_class(bert_states):
    with pytest.raises(ValueError, match="two classes"):
        probe_by_layer(bert_states, [1] * 48, bert_states, [1] * 48)


# --- CKA ---------------------------------------------------------------------------------------------


def test_cka_with_itself_is_one_at_every_layer(bert_states):
    assert all(r["cka"] == pytest.approx(1.0, abs=1e-6) for r in cka_by_layer(bert_states, bert_states))


@pytest.mark.parametrize("n", [10, 48])  # n < d (Gram form) and n > d (feature form)
def test_cka_invariant_to_rotation_and_scaling(bert_states, n):
    rng = np.random.default_rng(0)
    x = bert_states[1][:n]
    y = x[:, :8] + 0.1 * rng.normal(size=(n, 8))  # related to x, but not a rotation of it
    q, _ = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    q8, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    reference = linear_cka(x, y)
    assert 0.0 < reference < 1.0 - 1e-4
    assert linear_cka(x @ q * 7.5, y) == pytest.approx(reference, abs=1e-6)
    assert linear_cka(x, 0.01 * y @ q8) == pytest.approx(reference, abs=1e-6)
    assert linear_cka(x, x @ q * 3.0) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, rng.normal(size=(n, 5))) < reference  # unrelated features score lower


def test_cka_rejects_constant_features_and_mismatched_layers(bert_states):
    with pytest.raises(ValueError, match="constant"):
        linear_cka(np.ones((10, 4)), np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(ValueError, match="n"):
        linear_cka(np.ones((10, 4)), np.ones((9, 4)))
    with pytest.raises(ValueError, match="layers"):
        cka_by_layer(bert_states, bert_states[:-1])


def test_cka_drops_after_training_but_not_at_frozen_embeddings(tiny_bert, bert):
    from transformers import AutoModelForSequenceClassification

    _, tok = bert
    texts, labels = planted_rows(48)
    data = batches(tok, texts)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    before = layer_states(model, data)
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    y = torch.tensor(labels)
    for _ in range(3):
        for i, batch in enumerate(data):
            loss = model(**batch, labels=y[i * 16 : (i + 1) * 16]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = layer_states(model, data)
    cka = [r["cka"] for r in cka_by_layer(before, after)]
    assert cka[0] == pytest.approx(1.0, abs=1e-6)
    assert min(cka[1:]) < 0.99


# --- logit lens --------------------------------------------------------------------------------------


def _layer_outputs(model, enc) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """(embeddings, each decoder layer's output, logits) of one input, taken by forward hooks on the
    modules themselves (not from ``hidden_states``, which the lens reads)."""
    grabbed: list[torch.Tensor] = []

    def keep(_module, _inputs, output):
        grabbed.append((output[0] if isinstance(output, tuple) else output)[0].detach())

    modules = [model.model.embed_tokens, *model.model.layers]
    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        with torch.no_grad():
            logits = model(**enc).logits[0]
    finally:
        for handle in handles:
            handle.remove()
    return grabbed[0], grabbed[1:], logits


def test_lens_at_every_layer_is_the_head_on_that_layers_own_output(llama):
    model, tok = llama
    enc = tok("the film was great and the cast", return_tensors="pt")
    lens = lens_logits(model, enc["input_ids"], enc["attention_mask"])
    assert lens.shape == (
        model.config.num_hidden_layers + 1,
        enc["input_ids"].shape[1],
        model.config.vocab_size,
    )
    embedded, outputs, logits = _layer_outputs(model, enc)
    assert len(outputs) == model.config.num_hidden_layers

    def head(state: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.lm_head(model.model.norm(state)).float()

    # layer 0 is the embeddings, layer i the output of decoder layer i, each through norm + head
    torch.testing.assert_close(lens[0], head(embedded), atol=1e-4, rtol=1e-4)
    for i, state in enumerate(outputs, start=1):
        torch.testing.assert_close(lens[i], head(state), atol=1e-4, rtol=1e-4)
    # the last layer is the model's real output, and an intermediate layer is not
    torch.testing.assert_close(lens[-1], logits.float(), atol=1e-4, rtol=1e-4)
    assert (lens[1] - logits).abs().max() > 1e-2
    assert (lens[0] - lens[1]).abs().max() > 1e-2
    # hidden_states[-1] is already normed here: norming it again (the naive lens) would not match
    with torch.no_grad():
        last = model(**enc, output_hidden_states=True).hidden_states[-1]
        assert (model.lm_head(model.model.norm(last))[0] - logits).abs().max() > 1e-2


def test_logit_lens_report(llama):
    model, tok = llama
    tok.padding_side = "left"
    enc = tok(["a", "the film was great"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"][1:], enc["attention_mask"][1:]
    report = logit_lens(model, ids, mask, top_k=3, tokenizer=tok)
    n_layers = model.config.num_hidden_layers + 1
    positions = mask[0].nonzero().flatten().tolist()
    assert json.loads(json.dumps(report)) == report
    assert report["layers"] == n_layers and report["positions"] == positions
    assert len(report["top"]) == n_layers and all(len(row) == len(positions) for row in report["top"])
    assert len(report["top"][0][0]["ids"]) == 3 and len(report["top"][0][0]["tokens"]) == 3
    assert report["last_layer_max_abs_diff"] < 1e-3
    # at the last layer the final token is the top-1 with rank 0
    assert [e["ids"][0] for e in report["top"][-1]] == report["final_token_ids"]
    assert all(r == 0 for r in report["final_token_rank"][-1])
    assert np.allclose(report["final_token_prob"][-1], [e["probs"][0] for e in report["top"][-1]])
    # left padding does not change the lens at the real positions
    alone = logit_lens(model, ids[:, mask[0].bool()], top_k=3)
    assert alone["final_token_ids"] == report["final_token_ids"]
    np.testing.assert_allclose(alone["final_token_prob"], report["final_token_prob"], atol=1e-4)


def test_logit_lens_rejects_batches_and_models_without_final_norm(llama, bert):
    model, tok = llama
    enc = tok(["a b", "c d"], return_tensors="pt")
    with pytest.raises(ValueError, match="batch size 1"):
        logit_lens(model, enc["input_ids"])
    bert_model, _ = bert
    with pytest.raises(ValueError, match="bert"):
        logit_lens(bert_model, torch.tensor([[2, 5, 3]]))


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, initializer_range=0.3)
    model = GPT2LMHeadModel(cfg).eval()  # built in train mode: dropout would change the reference logits
    with torch.no_grad():  # a non-identity ln_f, so that norming the last state twice would show
        model.transformer.ln_f.weight.uniform_(0.5, 1.5)
        model.transformer.ln_f.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("kind", ["llama-untied-last-state", "gpt2", "llama-lora"])
def test_lens_matches_model_whether_or_not_last_state_is_normed(tiny_llama, kind):
    from transformers import AutoModelForCausalLM

    model = _gpt2() if kind == "gpt2" else _with_random_norm(AutoModelForCausalLM.from_pretrained(tiny_llama))
    if kind == "llama-untied-last-state":
        with torch.no_grad():
            tied = model(torch.tensor([[5, 6, 7]]), output_hidden_states=True).hidden_states[-1]
            model.config.tie_last_hidden_states = False  # hidden_states[-1] is then the state before the norm
            untied = model(torch.tensor([[5, 6, 7]]), output_hidden_states=True).hidden_states[-1]
        assert not torch.allclose(tied, untied, atol=1e-3)
    if kind == "llama-lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        )
    ids = torch.tensor([[5, 9, 17, 3, 11, 2]])
    report = logit_lens(model, ids)
    assert report["last_layer_max_abs_diff"] < 1e-3
    assert all(r == 0 for r in report["final_token_rank"][-1])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    assert report["final_token_ids"] == logits.argmax(-1).tolist()
