"""Integrated gradients checked against separate forward passes, not against captum's own delta."""

from __future__ import annotations

import pytest
import torch
from tests.unit.explain.conftest import make_ctx

from tunelab.explain.gradients import baseline_ids, integrated_gradients
from tunelab.explain.subject import causal_subject, classifier_subject


def test_integrated_gradients_are_complete_for_a_classifier(tiny_bert, bert_parts):
    from transformers import AutoConfig, BertForSequenceClassification

    _, tok = bert_parts
    config = AutoConfig.from_pretrained(tiny_bert, num_labels=2)
    config.initializer_range = 0.3  # the default init's logits barely move with the input
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    ctx = make_ctx(model, tok, kind="classifier", ig_steps=300)
    subject = classifier_subject(tok, "the cast was brilliant and the plot moving", ctx.max_length)
    p = ctx.predictor
    for target in (0, 1):
        subject.target = target
        got = integrated_gradients(ctx, subject)
        # f (the target logit) at the input and at the baseline, each its own forward pass
        f_x = p.class_scores([subject.ids], logits=True)[0, target]
        f_b = p.class_scores([baseline_ids(ctx, subject)], logits=True)[0, target]
        assert abs(f_x - f_b) > 1e-2  # not trivially 0 = 0
        assert got.token_scores.sum() == pytest.approx(f_x - f_b, rel=0.02, abs=1e-4)


def test_integrated_gradients_are_complete_for_an_answer(llama_parts):
    model, tok = llama_parts
    ctx = make_ctx(model, tok, kind="causal", chat=True, ig_steps=300)
    subject = causal_subject(tok, "what is 2 plus 3 ?", " it is 5 .", ctx.max_length, chat=True)
    got = integrated_gradients(ctx, subject)
    p = ctx.predictor
    base = baseline_ids(ctx, subject)[: subject.n_prompt]
    f_x, f_b = p.scores([subject.prompt_ids, base], answer=subject.answer_ids)
    assert abs(f_x - f_b) > 1e-2
    assert got.token_scores.sum() == pytest.approx(f_x - f_b, rel=0.02, abs=1e-3)
