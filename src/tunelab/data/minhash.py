"""MinHash signatures for many texts at once, and the datasketch LSH index over them.

Signatures equal datasketch's ``MinHash(num_perm, seed, hashfunc=crc32).update_batch(shingles)``
(scheme "affine32"; a unit test checks this), but are computed for a whole batch of texts with a
few numpy operations instead of one Python object per text, which is what makes 100,000 texts
take seconds.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from tunelab.data.records import normalise_key

_WORD = re.compile(r"\w+")
_MAX32 = np.uint32(0xFFFFFFFF)
# Texts are processed in slices whose shingles x num_perm matrix stays around 64 MB.
_CELLS_PER_SLICE = 16_000_000


def shingles(text: str, n: int = 5, unit: str = "char") -> list[bytes]:
    """The set of n-grams of the normalised text (characters or words); a short text is one shingle."""
    norm = normalise_key(text)
    if unit == "word":
        words = _WORD.findall(norm)
        grams = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    else:
        grams = {norm[i : i + n] for i in range(max(1, len(norm) - n + 1))}
    return [g.encode("utf-8") for g in grams]


def crc32(b: bytes) -> int:
    return zlib.crc32(b)


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3 finalizer, as datasketch applies it before the affine permutations.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(texts: Sequence[str], num_perm: int = 128, ngram: int = 5, unit: str = "char",
               seed: int = 1) -> np.ndarray:
    """An ``(len(texts), num_perm)`` uint32 matrix of MinHash values."""
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    a = a.astype(np.uint32)[None, :]
    b = b.astype(np.uint32)[None, :]
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    start = 0
    while start < len(texts):
        hashes: list[int] = []
        offsets: list[int] = []
        end = start
        while end < len(texts) and (not offsets or len(hashes) * num_perm < _CELLS_PER_SLICE):
            offsets.append(len(hashes))
            hashes.extend(zlib.crc32(s) for s in shingles(texts[end], ngram, unit))
            end += 1
        hv = _fmix32(np.asarray(hashes, dtype=np.uint32))
        # Large single texts are folded in chunks so memory stays bounded.
        chunk = max(1, _CELLS_PER_SLICE // num_perm)
        if len(hv) > chunk:
            for i, lo in enumerate(offsets):
                hi = offsets[i + 1] if i + 1 < len(offsets) else len(hv)
                acc = np.full(num_perm, _MAX32, dtype=np.uint32)
                for c in range(lo, hi, chunk):
                    part = hv[c : min(hi, c + chunk), None] * a + b
                    acc = np.minimum(acc, part.min(axis=0))
                out[start + i] = acc
        else:
            perm = hv[:, None] * a + b  # uint32 arithmetic wraps, as the affine32 scheme intends
            out[start:end] = np.minimum.reduceat(perm, np.asarray(offsets), axis=0)
        start = end
    return out


class LshIndex:
    """A datasketch MinHashLSH over signature rows, keyed by row number."""

    def __init__(self, sigs: np.ndarray, threshold: float, seed: int = 1) -> None:
        self.sigs = sigs
        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=threshold, num_perm=sigs.shape[1])
        self._lean = [LeanMinHash(seed=seed, hashvalues=row, scheme="affine32") for row in sigs]
        with self.lsh.insertion_session(buffer_size=100_000) as session:
            for i, mh in enumerate(self._lean):
                session.insert(i, mh, check_duplication=False)

    def candidates(self, i: int) -> list[int]:
        return self.lsh.query(self._lean[i])

    def similarity(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Estimated Jaccard for row pairs (vectorised)."""
        if len(i) == 0:
            return np.zeros(0)
        return (self.sigs[i] == self.sigs[j]).mean(axis=1)

    def pairs(self) -> list[tuple[int, int, float]]:
        """Every pair (i < j) that LSH proposes and whose estimated Jaccard reaches the threshold."""
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
