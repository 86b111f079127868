"""Sequence packing: rows of whole examples, restarting positions, and no attention across examples."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from tests.unit.train.fit_helpers import sft_setup

from tunelab.batching import IGNORE, pack_features


def _features(lengths: list[int]) -> list[dict]:
    return [{"input_ids": list(range(100 * i, 100 * i + n)),
             "labels": [IGNORE] * (n // 2) + [7] * (n - n // 2)} for i, n in enumerate(lengths)]


def test_pack_keeps_every_example_whole_and_fits_the_width():
    lengths = [random.Random(i).randint(3, 40) for i in range(200)]
    feats = _features(lengths)
    rows = pack_features(feats, 64)
    assert all(len(r["input_ids"]) <= 64 for r in rows)
    assert sum(r["examples"] for r in rows) == len(feats)
    # every example appears once, whole, with positions 0..n-1 and its first label masked
    pieces = []
    for r in rows:
        starts = [i for i, p in enumerate(r["position_ids"]) if p == 0] + [len(r["position_ids"])]
        for a, b in itertools.pairwise(starts):
            pieces.append(tuple(r["input_ids"][a:b]))
            assert r["position_ids"][a:b] == list(range(b - a))
            assert r["labels"][a] == IGNORE
    assert sorted(pieces) == sorted(tuple(f["input_ids"]) for f in feats)
    # best-fit decreasing leaves little room: within 10% of the lower bound on rows
    assert len(rows) <= 1.1 * sum(lengths) / 64 + 1
    assert pack_features(feats, 64) == rows, "deterministic"
    with pytest.raises(ValueError, match="does not fit"):
        pack_features(_features([65]), 64)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_match_unpacked(tiny_llama, tmp_path, attn):
    _, task, _, tok, feats = sft_setup(tiny_llama, tmp_path, n=12)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation=attn).eval()
    width = max(len(f["input_ids"]) for f in feats) * 3
    rows = pack_features(feats, width)
    assert any(r["examples"] >= 3 for r in rows)
    packed = task.collate(rows, tok)  # several rows: also checks the padding tail is its own sequence
    with torch.no_grad():
        logits = task.forward(model, packed).logits
        for r, row in enumerate(rows):
            at = 0
            for length in _example_lengths(row):
                ids = torch.tensor([row["input_ids"][at : at + length]])
                alone = model(input_ids=ids).logits[0]
                torch.testing.assert_close(logits[r, at : at + length], alone, atol=1e-5, rtol=1e-4)
                at += length


def test_packed_loss_equals_the_unpacked_loss_over_the_same_answers(tiny_llama, tmp_path):
    _, task, model, tok, feats = sft_setup(tiny_llama, tmp_path, n=10)
    task.use_loss(None, feats)
    model.eval()
    rows = pack_features(feats, 256)
    with torch.no_grad():
        packed = task.loss(model, task.collate(rows, tok))
        plain = task.loss(model, task.collate(feats, tok))
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=1e-5)
    assert task.collate(rows, tok)["attention_mask"].sum() == sum(len(f["input_ids"]) for f in feats)


def _example_lengths(row: dict) -> list[int]:
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["position_ids"])]
    return [b - a for a, b in itertools.pairwise(starts)]
