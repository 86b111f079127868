"""SHAP and LIME over words: the text they perturb is the part the model saw, a removed word never
glues its neighbours together, odd texts (one word, special-token strings) work, and budgets too
small to mean anything say so."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.explain.conftest import make_ctx

from tunelab.explain import sampling
from tunelab.explain.sampling import lime_values, shap_values, visible_text
from tunelab.explain.stage import _warnings
from tunelab.explain.subject import causal_subject, classifier_subject

CUT_PROMPT = " ".join(["the film"] * 20) + " was great"


@pytest.fixture(scope="module")
def cut(llama_parts):
    model, tok = llama_parts
    ctx = make_ctx(
        model, tok, kind="causal", max_length=24, chat=True, shap_max_evals=200, lime_num_samples=200
    )
    subject = causal_subject(tok, CUT_PROMPT, " it is 5 .", ctx.max_length, chat=True)
    assert subject.truncated and subject.cut == "start" and len(subject.words) < 40
    return ctx, subject


def _recording(monkeypatch, columns: int, score=lambda text: 0.0) -> list[str]:
    """Replace the model by ``score(text)`` in column 0 (and zeros); returns the texts scored."""
    seen: list[str] = []

    def fake(ctx, subject, texts):
        seen.extend(texts)
        out = np.zeros((len(texts), columns))
        out[:, 0] = [score(t) for t in texts]
        return out

    monkeypatch.setattr(sampling, "text_scores", fake)
    return seen


def test_a_prompt_cut_from_the_left_is_explained_on_its_kept_words(cut, monkeypatch):
    ctx, subject = cut
    assert visible_text(subject).split() == subject.words  # the cut prefix is not in it
    shap = shap_values(ctx, subject)  # was: "shap returned 42 word scores for 13 words"
    assert np.isfinite(subject.word_scores(shap.token_scores)).all()
    # LIME's features line up with the subject's words: a scorer that counts "film" gives every
    # kept "film" a weight near 1 and every other word one near 0
    seen = _recording(monkeypatch, 1, score=lambda t: t.split().count("film"))
    got = subject.word_scores(lime_values(ctx, subject).token_scores)
    assert max(len(t.split()) for t in seen) == len(subject.words)
    film = np.array([w == "film" for w in subject.words])
    np.testing.assert_allclose(got[film], 1.0, atol=0.05)
    np.testing.assert_allclose(got[~film], 0.0, atol=0.05)


def test_lime_never_merges_the_neighbours_of_a_removed_word(bert_parts, monkeypatch):
    model, tok = bert_parts
    ctx = make_ctx(model, tok, kind="classifier", lime_num_samples=100)
    subject = classifier_subject(tok, "the cast;brilliant film", ctx.max_length)
    assert subject.words == ["the", "cast", ";", "brilliant", "film"]
    seen = _recording(monkeypatch, 2)
    ctx.seed = 3
    lime_values(ctx, subject)
    assert all("castbrilliant" not in t for t in seen)
    assert "the cast brilliant film" in seen  # the sample without ";"
    assert all("  " not in t and t == t.strip() for t in seen)
    vocabulary = set(subject.words)
    assert all(set(t.replace(";", " ; ").split()) <= vocabulary for t in seen)


def test_shap_on_one_word_is_exact_and_special_token_strings_are_not_words(bert_parts):
    model, tok = bert_parts
    ctx = make_ctx(model, tok, kind="classifier")
    one = classifier_subject(tok, "brilliant", ctx.max_length)
    one.target = 1
    got = shap_values(ctx, one)  # was: a zero-size reduction inside shap's clustering
    p = ctx.predictor
    full, masked = p.class_scores(p.encode_texts(["brilliant", tok.mask_token], ctx.max_length))[:, 1]
    assert one.word_scores(got.token_scores)[0] == pytest.approx(full - masked, abs=1e-6)
    for text in ("the cast [SEP] was brilliant", "the [MASK] cast was brilliant"):
        s = classifier_subject(tok, text, ctx.max_length)
        assert "[SEP]" not in s.words and "[MASK]" not in s.words
        for fn in (shap_values, lime_values):  # shap was: "returned 5 word scores for 4 words"
            assert np.isfinite(s.word_scores(fn(ctx, s).token_scores)).all()


def test_budgets_too_small_to_mean_anything_are_warned_about_or_refused(bert_parts):
    from pydantic import ValidationError

    from tunelab.explain.config import ExplainConfig

    model, tok = bert_parts
    ctx = make_ctx(model, tok, kind="classifier", shap_max_evals=10, lime_num_samples=50)
    subject = classifier_subject(tok, " ".join(["the film was quite a moving story"] * 5), ctx.max_length)
    n = len(subject.words)
    shap, lime = shap_values(ctx, subject), lime_values(ctx, subject)
    assert f"{2 * n + 1}" in shap.info["warning"] and f"{2 * n}" in lime.info["warning"]
    records = [
        {"errors": {}, "methods": {"shap": {"info": shap.info}, "lime": {"info": lime.info}}},
        {"errors": {}, "methods": {"shap": {"info": {"max_evals": 500}}}},
    ]
    warned = _warnings([subject], records)
    assert any(w.startswith("shap on 1 example(s): explain.shap_max_evals=10") for w in warned)
    assert any(w.startswith("lime on 1 example(s)") for w in warned)
    roomy = make_ctx(model, tok, kind="classifier")
    assert "warning" not in shap_values(roomy, subject).info
    for field in ("lime_num_samples", "shap_max_evals"):
        with pytest.raises(ValidationError, match=field):
            ExplainConfig(**{field: 5})
