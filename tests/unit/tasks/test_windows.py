"""Long texts (model.long_text): truncate, head_tail and chunk windows, pooling back to rows, and the
settings saved with the model and read back by the stages that score texts themselves."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import torch
from tests.helpers import FILLER

from tunelab.batching import eval_batches
from tunelab.config import validate_recipe
from tunelab.config.load import RecipeError
from tunelab.tasks import get_task
from tunelab.tasks.windows import (
    GROUP,
    LongText,
    make_windows,
    pool,
    pooled_logits,
    scored_texts,
    windows_needed,
)

SHORT = "the film is great"


def long_text(n_words: int, last: str = "great", seed: int = 0) -> str:
    return " ".join([*random.Random(seed).choices(FILLER, k=n_words), last])


def recipe(model_dir: Path, task: str = "classification", **model):
    return validate_recipe(
        {
            "run": {"name": "w", "output_dir": "/tmp/unused"},
            "task": task,
            "data": {"sources": [{"path": "unused.jsonl"}]},
            "model": {"name": str(model_dir), "max_length": 16, **model},
        }
    )


@pytest.fixture(scope="module")
def bert_classifier(tiny_bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2).eval()
    return model, AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def llama_classifier(tiny_llama):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_llama, num_labels=2, pad_token_id=tok.pad_token_id
    ).eval()
    return model, tok


# tokenisation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["bert_classifier", "llama_classifier"])
def test_a_text_that_fits_reads_the_same_in_every_mode(which, request):
    model, tok = request.getfixturevalue(which)
    texts = [SHORT, "a quite dull movie"]
    plain = tok(texts, truncation=True, max_length=16)["input_ids"]
    for mode in ("truncate", "head_tail", "chunk"):
        win = make_windows(tok, texts, LongText(16, mode, stride=4))
        assert win.input_ids == plain and win.group == [0, 1] and win.dropped == 0, mode
    with torch.no_grad():
        truncated = pooled_logits(model, tok, [SHORT], LongText(16, "truncate"))
        for pooling in ("mean", "max"):
            chunked = pooled_logits(model, tok, [SHORT], LongText(16, "chunk", 4, pooling))
            torch.testing.assert_close(chunked, truncated, atol=1e-6, rtol=0)


def test_head_tail_keeps_a_quarter_of_the_budget_from_the_start_and_the_rest_from_the_end(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    text = long_text(40, last="awful")
    full = tok(text, add_special_tokens=False)["input_ids"]
    (ids,) = make_windows(tok, [text], LongText(18, "head_tail")).input_ids
    budget = 18 - tok.num_special_tokens_to_add()
    assert len(ids) == 18 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    head = budget // 4
    assert ids[1:-1] == full[:head] + full[-(budget - head) :]
    assert tok.convert_ids_to_tokens(ids[-2]) == "awful", "the deciding last word survives"
    assert tok(text, truncation=True, max_length=18)["input_ids"][-2] != ids[-2]


def test_chunk_windows_overlap_by_the_stride_and_stop_at_max_chunks(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [long_text(60), SHORT, long_text(25, seed=1)]
    full = tok(texts, add_special_tokens=False)["input_ids"]
    everything = make_windows(tok, texts, LongText(16, "chunk", stride=4, max_chunks=100))
    assert sorted(set(everything.group)) == [0, 1, 2] and everything.group == sorted(everything.group)
    for row in range(3):
        windows = [w for w, g in zip(everything.input_ids, everything.group, strict=True) if g == row]
        body = [w[1:-1] for w in windows]
        assert all(len(w) <= 16 and w[0] == tok.cls_token_id and w[-1] == tok.sep_token_id for w in windows)
        for a, b in itertools.pairwise(body):
            assert a[-4:] == b[:4], "consecutive windows share `stride` tokens"
        rebuilt = body[0] + [t for w in body[1:] for t in w[4:]]
        assert rebuilt == full[row], "the windows cover the whole text"
    capped = make_windows(tok, texts, LongText(16, "chunk", stride=4, max_chunks=2))
    per_row = [everything.group.count(r) for r in range(3)]
    assert capped.per_row == [min(n, 2) for n in per_row]
    assert capped.dropped == sum(max(0, n - 2) for n in per_row) > 0
    assert capped.capped == sum(n > 2 for n in per_row)


def test_the_report_s_window_count_is_the_tokenizers(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [long_text(n, seed=n) for n in range(0, 90, 7)]
    lengths = [len(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]
    for stride in (0, 3, 9):
        settings = LongText(16, "chunk", stride=stride, max_chunks=1000)
        made = make_windows(tok, texts, settings).per_row
        assert made == [windows_needed(n, 14, stride) for n in lengths], stride


def test_a_stride_the_window_cannot_hold_is_refused_naming_the_key(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match=r"model\.chunk\.stride \(14\).*at most 13"):
        make_windows(tok, [SHORT], LongText(16, "chunk", stride=14))


def test_recipe_validation_names_a_bad_stride_by_its_key(tiny_bert):
    with pytest.raises(RecipeError) as err:
        recipe(tiny_bert, long_text="chunk", chunk={"stride": 16})
    assert "model.chunk.stride (16) must be below model.max_length (16)" in str(err.value)
    with pytest.raises(RecipeError) as err:
        recipe(tiny_bert, long_text="chunk", chunk={"stride": -1, "pooling": "median"})
    assert "model.chunk.stride" in str(err.value) and "model.chunk.pooling" in str(err.value)
    assert recipe(tiny_bert, chunk={"stride": 64}).model.long_text == "truncate", "unused when truncating"


# pooling -------------------------------------------------------------------------------------------
def test_pool_takes_the_mean_or_max_per_row_in_row_order():
    logits = torch.tensor([[1.0, 4.0], [3.0, 0.0], [5.0, 5.0], [-1.0, 2.0]])
    group = [0, 0, 2, 1]
    mean = torch.tensor([[2.0, 2.0], [-1.0, 2.0], [5.0, 5.0]])
    torch.testing.assert_close(pool(logits, group, "mean"), mean)
    top = torch.tensor([[3.0, 4.0], [-1.0, 2.0], [5.0, 5.0]])
    torch.testing.assert_close(pool(logits, group, "max"), top)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_chunk_trains_on_windows_and_predicts_rows(bert_classifier, tiny_bert, pooling):
    model, tok = bert_classifier
    rows = [{"text": long_text(50, seed=i), "label": "pos" if i % 2 else "neg"} for i in range(5)]
    rows.insert(2, {"text": SHORT, "label": "pos"})
    r = recipe(tiny_bert, long_text="chunk", chunk={"stride": 3, "pooling": pooling})
    task = get_task("classification")
    feats = task.encode(rows, tok, r, ["neg", "pos"])
    assert len(feats) > len(rows) and [f[GROUP] for f in feats] == sorted(f[GROUP] for f in feats)
    assert all(f["labels"] == (rows[f[GROUP]]["label"] == "pos") for f in feats), "windows carry row labels"
    batch = task.collate(feats[:4], tok)
    assert batch[GROUP].tolist() == [f[GROUP] for f in feats[:4]]
    loss, preds = task.predict(model, eval_batches(feats, task, tok, 3))  # batches split rows' windows
    assert len(preds) == len(rows) and preds.gold.tolist() == [int(x["label"] == "pos") for x in rows]
    expected = pooled_logits(model, tok, [x["text"] for x in rows], LongText.of(r.model))
    torch.testing.assert_close(torch.from_numpy(preds.scores), torch.softmax(expected, -1), atol=1e-5, rtol=0)
    ce = torch.nn.functional.cross_entropy(expected, torch.from_numpy(preds.gold))
    assert loss == pytest.approx(ce.item(), abs=1e-5), "the loss is of the pooled logits"
    # curriculum difficulty: one figure per window, its row's loss
    losses = task.example_losses(model, eval_batches(feats, task, tok, 3))
    per_row = task.losses_of(preds)
    assert losses == pytest.approx([per_row[f[GROUP]] for f in feats])


def test_multilabel_and_regression_pool_windows_into_rows(bert_classifier, tiny_bert):
    from transformers import AutoModelForSequenceClassification

    _, tok = bert_classifier
    texts = [long_text(40, seed=i) for i in range(3)] + [SHORT]
    for name, labels, values, n_out in (
        ("multilabel", ["a", "b"], [["a"], ["b"], ["a", "b"], ["a"]], 2),
        ("regression", None, [0.5, -1.0, 2.0, 0.0], 1),
    ):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=n_out).eval()
        task = get_task(name)
        r = recipe(tiny_bert, task=name, long_text="chunk", chunk={"stride": 2})
        rows = [{"text": t, "label": v} for t, v in zip(texts, values, strict=True)]
        feats = task.encode(rows, tok, r, labels)
        assert len(feats) > len(rows)
        _, preds = task.predict(model, eval_batches(feats, task, tok, 4))
        assert len(preds) == len(rows), name
        expected = pooled_logits(model, tok, texts, LongText.of(r.model))
        got = torch.from_numpy(preds.scores).float().reshape(expected.shape)
        want = torch.sigmoid(expected) if name == "multilabel" else expected
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


# saved settings ---------------------------------------------------------------------------------------
def test_the_settings_are_saved_with_the_model_and_read_back(tiny_bert):
    r = recipe(tiny_bert, long_text="chunk", chunk={"stride": 5, "pooling": "max", "max_chunks": 3})
    info = get_task("classification").model_info(r, str(tiny_bert), ["neg", "pos"])
    assert info["long_text"] == "chunk" and info["chunk"] == {"stride": 5, "pooling": "max", "max_chunks": 3}
    assert LongText.from_info(info) == LongText.of(r.model)
    assert LongText.from_info({"max_length": 64}) == LongText(64), "a model saved before: truncate"
    plain = get_task("classification").model_info(recipe(tiny_bert), str(tiny_bert), ["neg", "pos"])
    assert plain["long_text"] == "truncate" and plain["chunk"] is None


def test_serve_and_audit_read_long_texts_as_the_model_was_trained(bert_classifier):
    from tunelab.audit.scoring import class_probs
    from tunelab.serve.engine import TransformersEngine
    from tunelab.serve.source import Served

    model, tok = bert_classifier
    texts = [long_text(70, seed=3), SHORT, long_text(30, seed=4)]
    settings = LongText(16, "chunk", stride=3)
    expected = torch.softmax(pooled_logits(model, tok, texts, settings), -1)
    served = Served("classifier", "m", model, tok, ["neg", "pos"], 16, info=settings.info())
    got = TransformersEngine(served).classify(texts)
    torch.testing.assert_close(torch.tensor([p for p, _ in got]), expected, atol=1e-5, rtol=0)
    assert [n for _, n in got] == scored_texts(model, tok, texts, settings)[1]
    audited = class_probs(model, tok, texts, settings, batch_size=2)
    torch.testing.assert_close(torch.from_numpy(audited).float(), expected, atol=1e-5, rtol=0)
    # a served model saved without settings truncates, as before
    old = TransformersEngine(Served("classifier", "m", model, tok, ["neg", "pos"], 16)).classify(texts)
    truncated = torch.softmax(pooled_logits(model, tok, texts, LongText(16)), -1)
    torch.testing.assert_close(torch.tensor([p for p, _ in old]), truncated, atol=1e-5, rtol=0)
    windowed = pooled_logits(model, tok, texts[:1], settings)
    first = pooled_logits(model, tok, texts[:1], LongText(16))
    assert (windowed - first).abs().max() > 1e-5, "the long text reads differently"
