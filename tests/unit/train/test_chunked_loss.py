"""The chunked answer-only loss equals plain cross-entropy over the answer tokens, value and gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.unit.train.fit_helpers import sft_setup
from transformers import set_seed

from tunelab.batching import IGNORE, pack_features
from tunelab.config.train import AnswerOnlySpec
from tunelab.models.adapters import apply_adapter
from tunelab.tasks.chunked_loss import chunked_cross_entropy, chunking_problem, output_head

TOL = 1e-5  # fp32


def _plain(task, model, batch, smoothing: float) -> torch.Tensor:
    """The reference: full logits, shifted, cross-entropy over labels != -100."""
    logits = task.forward(model, batch).logits[:, :-1].float()
    target = batch["labels"][:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE,
        label_smoothing=smoothing,
    )


def _loss_and_grads(model, loss_fn) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("adapter", [False, True], ids=["full-tied-embeddings", "lora"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("packed", [False, True])
def test_chunked_equals_plain_cross_entropy_and_its_gradient(
    tiny_llama, tmp_path, adapter, smoothing, packed
):
    set_seed(7)
    recipe, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=12)
    if adapter:
        model = apply_adapter(model, recipe.model.adapter, task.peft_task_type)
    assert model.config.tie_word_embeddings
    rows = pack_features(feats, 128) if packed else feats
    batch = task.collate(rows, tok)
    assert ("position_ids" in batch) == packed
    model.eval()  # no LoRA dropout: both losses see the same network (gradients flow in eval mode too)
    task.use_loss(AnswerOnlySpec(label_smoothing=smoothing), feats)
    plain, g_plain = _loss_and_grads(model, lambda: _plain(task, model, batch, smoothing))
    task.use_chunked_loss(7)  # several chunks, the last one short
    scored = int((batch["labels"][:, 1:] != IGNORE).sum())
    assert scored > 3 * 7
    chunked, g_chunked = _loss_and_grads(model, lambda: task.loss(model, batch))
    task.use_chunked_loss(None)
    torch.testing.assert_close(chunked, plain, atol=TOL, rtol=TOL)
    assert set(g_chunked) == set(g_plain) and g_plain
    for name, g in g_plain.items():
        torch.testing.assert_close(
            g_chunked[name], g, atol=TOL, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}"
        )
    if not adapter:  # the tied lm_head / embedding matrix gets both contributions
        assert "model.embed_tokens.weight" in g_chunked


def test_the_logits_of_the_chunks_are_not_kept_for_backward(tiny_llama, tmp_path):
    """Only hidden-size tensors are saved for backward: no (tokens, vocab) tensor survives the forward."""
    _, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=12)
    batch = task.collate(feats, tok)
    vocab = model.config.vocab_size
    head = output_head(model)
    hidden = torch.randn((*batch["input_ids"].shape, model.config.hidden_size), requires_grad=True)
    saved: list[torch.Size] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = chunked_cross_entropy(hidden, batch["labels"], head, chunk=8)
    assert saved and not any(vocab in s for s in saved), saved
    loss.backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(head(hidden).reshape(-1, vocab), batch["labels"].reshape(-1), ignore_index=IGNORE)
    assert any(vocab in s for s in saved), "the plain loss does keep vocabulary-wide logits"


def test_models_whose_logits_are_not_the_head_output_are_refused(tiny_llama, tmp_path):
    model = sft_setup(tiny_llama, tmp_path, n=4)[2]
    assert chunking_problem(model) is None
    model.config.final_logit_softcapping = 30.0
    assert "softcapping" in chunking_problem(model)


def test_a_batch_without_answer_tokens_gives_zero(tiny_llama, tmp_path):
    _, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=4)
    batch = task.collate(feats, tok)
    labels = torch.full_like(batch["labels"], IGNORE)
    hidden = torch.randn((*labels.shape, model.config.hidden_size), requires_grad=True)
    loss = chunked_cross_entropy(hidden, labels, output_head(model), chunk=8)
    assert loss.item() == 0.0
