"""Explain contexts over the tiny models, built without a run directory (no training, no data stage)."""

from __future__ import annotations

import pytest
import torch

from tunelab.explain.config import ExplainConfig
from tunelab.explain.context import Context
from tunelab.explain.predictor import Predictor


def make_ctx(model, tokenizer, *, kind: str, max_length: int = 64, chat: bool = False, **cfg) -> Context:
    """A Context as ``load_context`` builds one, for a model already in memory."""
    model = model.eval()
    output = "softmax" if kind == "classifier" else "identity"
    labels = [str(i) for i in range(model.config.num_labels)] if kind == "classifier" else []
    return Context(
        model=model,
        tokenizer=tokenizer,
        task=None,
        kind=kind,
        predictor=Predictor(model, tokenizer, kind=kind, output=output, batch_size=16),
        cfg=ExplainConfig(**cfg),
        labels=labels,
        max_length=max_length,
        seed=0,
        which="tuned",
        chat=chat,
    )


@pytest.fixture(scope="module")
def bert_parts(tiny_bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2).eval()
    return model, AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def llama_parts(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(tiny_llama)
