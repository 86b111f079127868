"""MinHash sketches match datasketch; the LSH index finds near-duplicates; union-find clusters them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasketch import MinHash

import tunelab.data.minhash as mh
from tunelab.data.minhash import LshIndex, UnionFind, _bucket_pairs, shingle_hash, shingles, sketch


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("abcdefgh ") for _ in range(rng.choice([0, 3, 5, 6, 40, 700, 3000])))
        for _ in range(n)
    ] + ["héllo wörld ünïcode 😀", "Hello   World"]


@pytest.mark.parametrize(("unit", "n", "num_perm"), [("char", 5, 256), ("word", 2, 64), ("char", 1, 32)])
def test_signatures_equal_datasketch(
    monkeypatch: pytest.MonkeyPatch, unit: str, n: int, num_perm: int
) -> None:
    monkeypatch.setattr(mh, "_SLICE_TOKENS", 2000)  # force several slices and blocks
    texts = _texts(60)
    sk = sketch(texts, num_perm, n, unit, seed=7)
    for k, text in enumerate(texts):
        ref = MinHash(num_perm=num_perm, seed=7, hashfunc=shingle_hash)
        ref.update_batch(shingles(text, n, unit))
        assert np.array_equal(ref.hashvalues, sk.sigs[k])
        distinct = sorted({shingle_hash(s) for s in shingles(text, n, unit)})
        assert sk.shingles[sk.offsets[k] : sk.offsets[k + 1]].tolist() == distinct


def test_exact_jaccard() -> None:
    a, b = "the quick brown fox jumps", "the quick brown fox leaps"
    sk = sketch([a, b], 64, 5)
    sa, sb = set(shingles(a)), set(shingles(b))
    assert sk.jaccard(0, 1) == pytest.approx(len(sa & sb) / len(sa | sb))
    assert sk.jaccard(0, 0) == 1.0


def test_index_finds_pairs_above_threshold_only() -> None:
    rng = random.Random(1)
    words = [f"w{i}" for i in range(500)]
    base = [" ".join(rng.sample(words, 30)) for _ in range(300)]
    copies = [t.replace(t.split()[3], "zz", 1) for t in base[:100]]  # one word changed: Jaccard ~0.85-0.9
    texts = base + copies
    idx = LshIndex(sketch(texts, 128, 5), 0.7)
    found = {(i, j) for i, j, _ in idx.pairs()}
    planted = {(k, 300 + k) for k in range(100)}
    assert planted <= found  # every planted copy found
    for i, j, s in idx.pairs():
        assert s >= 0.7 and s == pytest.approx(idx.sk.jaccard(i, j))
    assert len(found - planted) <= 2  # random texts rarely share 70% of their shingles
    assert 300 in idx.candidates(0)


def test_big_bucket_is_connected_without_all_pairs() -> None:
    keys = np.array([5] * 50 + [7, 7, 9], dtype=np.uint64)
    i, j = _bucket_pairs(keys)
    assert (i < j).all()
    uf = UnionFind(len(keys))
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        uf.union(a, b)
    groups = sorted(sorted(g) for g in uf.groups().values())
    assert groups == [list(range(50)), [50, 51], [52]]
    assert len(i) < 50 * 49 // 2  # star + chain, not every pair
    i2, _ = _bucket_pairs(np.array([1, 1, 1, 1], dtype=np.uint64))
    assert len(i2) == 6  # small buckets give every pair
