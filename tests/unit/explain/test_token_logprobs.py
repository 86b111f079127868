"""The shared continuation scorer (``tunelab.models.scoring``) on prompt variants the explain stage
makes: an empty prompt (every word removed, no template or BOS left) is not scored, alone or in a
batch, and never changes its neighbours' figures."""

from __future__ import annotations

import numpy as np
import torch

from tunelab.explain.predictor import Predictor
from tunelab.models.scoring import token_logprobs


def _reference(model, prompt: list[int], answer: list[int]) -> list[float]:
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([prompt + answer])).logits[0].float(), -1)
    return [logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer)]


def test_an_empty_prompt_is_nan_alone_and_in_a_batch(llama_parts):
    model, tok = llama_parts
    pad = tok.pad_token_id
    answer = tok(" it is 5 .", add_special_tokens=False)["input_ids"]
    prompt = tok("what is 2 plus 3 ?", add_special_tokens=False)["input_ids"]
    alone = token_logprobs(model, pad, [[]], [answer])  # was: a shape error inside the gather
    assert len(alone) == 1 and len(alone[0]) == len(answer) and np.isnan(alone[0]).all()
    batch = token_logprobs(model, pad, [prompt, [], prompt[:2]], [answer, answer, []], batch_size=8)
    assert np.isnan(batch[1]).all() and len(batch[1]) == len(answer)  # was: read after a pad token
    np.testing.assert_allclose(batch[0], _reference(model, prompt, answer), atol=1e-4)
    assert batch[2].shape == (0,)
    # the explain predictor keeps one row per variant: the empty one has no score
    p = Predictor(model, tok, kind="causal")
    scores = p.scores([prompt, []], answer=answer)
    assert np.isnan(scores[1]) and np.isclose(scores[0], sum(_reference(model, prompt, answer)), atol=1e-4)
