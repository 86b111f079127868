"""A chat prompt is explained as the model read it: the whole conversation before the answer through
the chat template (system and earlier turns included), the explained turn located exactly."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import CHATML
from tests.unit.explain.conftest import make_ctx
from transformers import AutoTokenizer

from tunelab.explain.choose import _row_subject
from tunelab.explain.sampling import text_scores
from tunelab.explain.subject import NO_WORD, causal_subject

TRIMMING = CHATML.replace("m['content']", "(m['content'] | trim)")
MESSAGES = [
    {"role": "system", "content": "you add two numbers"},
    {"role": "user", "content": "what is 2 plus 3 ?"},
    {"role": "assistant", "content": "it is 5 ."},
    {"role": "user", "content": "what is 2 plus 3 ?"},  # the same words again: only this turn is ranked
    {"role": "assistant", "content": "it is 5 ."},
]


def test_a_template_that_trims_the_prompt_still_locates_its_words(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.chat_template = TRIMMING
    s = causal_subject(tok, "  what is 2 plus 3 ?\n", " it is 5 .", max_length=64, chat=True)
    assert s.text == "what is 2 plus 3 ?"  # was: rfind -1, the words read from the wrong characters
    assert s.source[s.text_offset : s.text_offset + len(s.text)] == s.text
    assert s.words == ["what", "is", "2", "plus", "3", "?"]
    weird = AutoTokenizer.from_pretrained(tiny_llama)
    weird.chat_template = CHATML.replace("m['content']", "(m['content'] | upper)")
    with pytest.raises(ValueError, match="changes the text of the prompt"):
        causal_subject(weird, "what is 2 plus 3 ?", " it is 5 .", max_length=64, chat=True)


def test_an_sft_row_is_explained_in_its_whole_conversation(llama_parts):
    model, tok = llama_parts
    ctx = make_ctx(model, tok, kind="causal", max_length=128, chat=True)
    s = _row_subject(ctx, {"messages": MESSAGES})
    seen = tok.apply_chat_template(MESSAGES[:-1], add_generation_prompt=True, tokenize=False)
    assert s.source == seen and "you add two numbers" in s.source
    assert s.prompt_ids == tok(seen, add_special_tokens=False)["input_ids"]  # as the sft task trains
    assert s.words == ["what", "is", "2", "plus", "3", "?"] and s.turn == 3
    assert s.text_offset == seen.rindex("what is 2 plus 3 ?")  # the last user turn, not the first
    first_word = min(i for i, w in enumerate(s.word_of) if w != NO_WORD)
    assert tok.decode(s.ids[:first_word]).count("it is 5 .") == 1  # earlier turns are context
    # SHAP and LIME score perturbed turns inside the same conversation
    full = text_scores(ctx, s, [s.text])[0, 0]
    assert full == pytest.approx(ctx.predictor.answer_logprobs([s.prompt_ids], s.answer_ids).sum(), abs=1e-5)
    record = s.to_json()
    assert record["conversation"][0]["content"] == "you add two numbers" and record["turn"] == 3
    assert np.isfinite(full)
