"""Where a classifier's prediction is read from (the attention row explained), and picking
examples from a split when some rows cannot be explained."""

from __future__ import annotations

import torch
from tests.unit.explain.conftest import make_ctx

from tunelab.explain.attention import read_position
from tunelab.explain.choose import from_split
from tunelab.explain.subject import NO_WORD, classifier_subject


def _states(model, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(last hidden states (seq, hidden), logits) of one input, from one forward pass."""
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model(input_ids=x, attention_mask=torch.ones_like(x), output_hidden_states=True)
    return out.hidden_states[-1][0], out.logits[0]


def test_a_decoder_classifier_is_read_at_its_last_real_token(tiny_llama):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=2).eval()
    assert model.config.pad_token_id == tok.eos_token_id  # tiny llama pads with <|im_end|>
    ctx = make_ctx(model, tok, kind="classifier")
    subject = classifier_subject(tok, "the film was great", ctx.max_length)
    n = len(subject.ids)
    assert read_position(ctx, subject) == n - 1  # was 0 for every classifier
    # a trailing end-of-text token equal to the pad token is skipped by the head, and so here
    subject.ids.append(tok.eos_token_id)
    subject.word_of.append(NO_WORD)
    subject.n_prompt += 1
    pos = read_position(ctx, subject)
    assert pos == n - 1
    states, logits = _states(model, subject.ids)  # the head really reads that position
    torch.testing.assert_close(model.score(states[pos]), logits, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(model.score(states[0]), logits, atol=1e-3)


def test_a_tunelab_head_is_read_where_it_pools(tiny_bert):
    from transformers import AutoModel, AutoTokenizer

    from tunelab.models.heads import HeadedModel

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    spec = {"type": "linear", "dropout": 0.0, "mlp_hidden": None, "num_labels": 2}
    for pooling, where in (("last", -1), ("cls", 0)):
        torch.manual_seed(0)
        model = HeadedModel(AutoModel.from_pretrained(tiny_bert), {**spec, "pooling": pooling}).eval()
        ctx = make_ctx(model, tok, kind="classifier")
        subject = classifier_subject(tok, "a quite moving story", ctx.max_length)
        pos = read_position(ctx, subject)
        assert pos == where % len(subject.ids), pooling
        x = torch.tensor([subject.ids])
        with torch.no_grad():
            states = model.backbone(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0]
            logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0]
        torch.testing.assert_close(model.classifier.net(states[pos]), logits, atol=1e-5, rtol=1e-4)


def test_a_row_whose_answer_leaves_no_room_is_skipped_with_a_warning(llama_parts):
    model, tok = llama_parts
    ctx = make_ctx(model, tok, kind="causal", max_length=20, chat=True)

    def row(q: str, a: str) -> dict:
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}

    rows = [row(f"what is {i} plus 1 ?", f"it is {i + 1} .") for i in range(5)]
    rows.insert(2, row("what is 2 plus 3 ?", " ".join(["plus"] * 40)))  # 40 answer tokens > max_length
    got = from_split(ctx, rows, 6, ["confident", "misclassified", "random"])  # was: ValueError
    assert sorted(s.meta["row"] for s in got) == [0, 1, 3, 4, 5]
    assert len(ctx.warnings) == 1 and "1 of 6 rows skipped" in ctx.warnings[0]
    assert "row 2" in ctx.warnings[0] and "leaves no room" in ctx.warnings[0]


def test_rows_that_cannot_be_explained_are_skipped_in_the_analyses_too(bert_parts, llama_parts):
    from tunelab.explain.analyses import _batches, _subjects

    model, tok = bert_parts
    ctx = make_ctx(model, tok, kind="classifier")
    rows = [
        {"text": "a moving story", "label": "1"},
        {"text": "  ", "label": "0"},
        {"text": "dull", "label": "0"},
    ]
    got = from_split(ctx, rows, 3, ["random"])
    assert sorted(s.meta["row"] for s in got) == [0, 2]
    assert "row 1" in ctx.warnings[0] and "empty text" in ctx.warnings[0]
    notes: list[str] = []
    assert len(_subjects(ctx, rows, "global importance", notes)) == 2
    assert notes == [
        "global importance: 1 of 3 rows skipped (e.g. sampled row 1: cannot explain an empty text)"
    ]
    causal = make_ctx(*llama_parts, kind="causal", max_length=12)
    notes = []
    texts = [{"text": "what is 2 plus 3 ? it is 5 ."}, {"text": " ".join(["plus"] * 60)}]
    batches = _batches(causal, texts, notes)
    assert sum(len(b["input_ids"]) for b in batches) == 1 and "layer-wise analysis: 1 of 2" in notes[0]
