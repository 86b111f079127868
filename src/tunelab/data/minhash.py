"""MinHash signatures for many texts at once, and the datasketch LSH index over them.

A shingle (a character or word n-gram of the normalised text) is hashed with a 64-bit polynomial
over its code points (or word hashes), folded to 32 bits. Signatures equal datasketch's
``MinHash(num_perm, seed, hashfunc=shingle_hash).update_batch(shingles)`` (scheme "affine32"; a unit
test checks this), but the rolling hashes, permutations and minima are computed for a whole batch of
texts with numpy instead of one Python object per text, which makes 100,000 texts take seconds.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from tunelab.data.records import normalise_key

_WORD = re.compile(r"\w+")
_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial shingle hash
_SLICE_TOKENS = 400_000  # texts are processed in slices of about this many tokens to bound memory


def tokens(text: str, unit: str = "char") -> list[int]:
    """The token ids of the normalised text: code points, or CRC32s of words."""
    norm = normalise_key(text)
    if unit == "word":
        return [zlib.crc32(w.encode("utf-8")) for w in _WORD.findall(norm)]
    return [ord(c) for c in norm]


def shingle_hash(ids: Sequence[int]) -> int:
    """32-bit hash of one shingle (reference implementation of the vectorised one)."""
    h = 0
    for k, t in enumerate(ids):
        h = (h + t * pow(int(_P), k, 1 << 64)) % (1 << 64)
    return (h ^ (h >> 32)) & 0xFFFFFFFF


def shingles(text: str, n: int = 5, unit: str = "char") -> list[tuple[int, ...]]:
    """The n-grams of token ids; a text shorter than n is one shingle (an empty one hashes to 0)."""
    ids = tokens(text, unit)
    if len(ids) <= n:
        return [tuple(ids)]
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3 finalizer, as datasketch applies it before the affine permutations.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _slice_hashes(docs: list[list[int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a slice of documents, concatenated, and each document's first offset."""
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    flat = np.fromiter((t for d in docs for t in d), dtype=np.uint64, count=int(lengths.sum()))
    total = len(flat)
    h = np.zeros(total, dtype=np.uint64)
    power = np.uint64(1)
    with np.errstate(over="ignore"):  # the polynomial is meant to wrap modulo 2^64
        for k in range(n):
            h[: total - k] += flat[k:] * power
            power = power * _P
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    windows = np.maximum(lengths - n + 1, 1)
    # window j of a document starts at starts + j; it is only valid inside the document
    idx = np.repeat(starts, windows) + (np.arange(windows.sum()) - np.repeat(np.cumsum(windows) - windows, windows))
    hashes = h[idx] if total else np.zeros(len(idx), dtype=np.uint64)
    short = np.flatnonzero(lengths <= n)  # whole-text shingles: recompute exactly, no padding
    first = np.concatenate(([0], np.cumsum(windows)[:-1]))
    for d in short:
        hashes[first[d]] = shingle_hash(docs[d])
    folded = ((hashes ^ (hashes >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return folded, first


def signatures(
    texts: Sequence[str], num_perm: int = 128, ngram: int = 5, unit: str = "char", seed: int = 1
) -> np.ndarray:
    """An ``(len(texts), num_perm)`` uint32 matrix of MinHash values."""
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    a = a.astype(np.uint32)[None, :]
    b = b.astype(np.uint32)[None, :]
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    chunk = max(1, 2_000_000 // num_perm)  # rows of the shingles x permutations matrix at a time
    start = 0
    while start < len(texts):
        docs: list[list[int]] = []
        size = 0
        while start + len(docs) < len(texts) and (not docs or size < _SLICE_TOKENS):
            docs.append(tokens(texts[start + len(docs)], unit))
            size += len(docs[-1])
        hv, first = _slice_hashes(docs, ngram)
        hv = _fmix32(hv)
        mins = np.full((len(docs), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
        # Shingle rows in chunks; each chunk's minima are folded into the documents it touches.
        for lo in range(0, len(hv), chunk):
            hi = min(len(hv), lo + chunk)
            perm = hv[lo:hi, None] * a + b  # uint32 arithmetic wraps, as the affine32 scheme intends
            d0 = int(np.searchsorted(first, lo, side="right")) - 1
            d1 = int(np.searchsorted(first, hi - 1, side="right"))
            cuts = np.clip(first[d0:d1], lo, hi) - lo
            cuts[0] = 0
            part = np.minimum.reduceat(perm, cuts, axis=0)
            np.minimum(mins[d0:d1], part, out=mins[d0:d1])
        out[start : start + len(docs)] = mins
        start += len(docs)
    return out


class LshIndex:
    """A datasketch MinHashLSH over signature rows (keyed by row number), with exact verification.

    Banding tuned for the threshold itself misses many pairs near it (datasketch's bands for 0.8
    propose a pair of Jaccard 0.8 only 40% of the time), so the bands are tuned for a candidate
    threshold 0.1 lower and weighted against false negatives; candidates are then confirmed by the
    exact Jaccard of their shingle sets, so what is reported is a true near-duplicate.
    """

    def __init__(self, texts: Sequence[str], sigs: np.ndarray, threshold: float, ngram: int = 5,
                 unit: str = "char", seed: int = 1) -> None:
        self.texts = texts
        self.sigs = sigs
        self.threshold = threshold
        self.ngram, self.unit = ngram, unit
        num_perm = sigs.shape[1]
        self.lsh = MinHashLSH(threshold=max(0.2, threshold - 0.1), num_perm=num_perm, weights=(0.1, 0.9))
        # a candidate whose estimate is this far below the threshold is not worth an exact check (4 sd)
        self._slack = max(0.1, 4 * (0.25 / num_perm) ** 0.5)
        self._lean = [LeanMinHash(seed=seed, hashvalues=row, scheme="affine32") for row in sigs]
        with self.lsh.insertion_session(buffer_size=100_000) as session:
            for i, mh in enumerate(self._lean):
                session.insert(i, mh, check_duplication=False)
        self._cache: dict[int, frozenset[tuple[int, ...]]] = {}

    def candidates(self, i: int) -> list[int]:
        return self.lsh.query(self._lean[i])

    def _set(self, i: int) -> frozenset[tuple[int, ...]]:
        got = self._cache.get(i)
        if got is None:
            if len(self._cache) > 20_000:  # bounded: a full cache of 100k texts would cost GBs
                self._cache.clear()
            got = self._cache[i] = frozenset(shingles(self.texts[i], self.ngram, self.unit))
        return got

    def jaccard(self, i: int, j: int) -> float:
        a, b = self._set(i), self._set(j)
        return len(a & b) / len(a | b) if a or b else 1.0

    def similarity(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Jaccard of row pairs: exact where the MinHash estimate comes near the threshold, else the estimate."""
        if len(i) == 0:
            return np.zeros(0)
        est = (self.sigs[i] == self.sigs[j]).mean(axis=1)
        for k in np.flatnonzero(est >= self.threshold - self._slack):
            est[k] = self.jaccard(int(i[k]), int(j[k]))
        return est

    def pairs(self) -> list[tuple[int, int, float]]:
        """Every pair (i < j) that LSH proposes and whose Jaccard reaches the threshold."""
        left: list[int] = []
        right: list[int] = []
        for i in range(len(self.sigs)):
            for j in self.candidates(i):
                if j > i:
                    left.append(i)
                    right.append(j)
        li, ri = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        sim = self.similarity(li, ri)
        keep = sim >= self.threshold
        return list(zip(li[keep].tolist(), ri[keep].tolist(), sim[keep].tolist(), strict=True))


class UnionFind:
    """Disjoint sets over 0..n-1 (path halving, union by size)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def groups(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return out
