"""MinHash sketches for many texts at once, and an LSH index over them.

A shingle (a character or word n-gram of the normalised text) is hashed with a 64-bit polynomial
over its code points (or word hashes), folded to 32 bits. Signatures equal datasketch's
``MinHash(num_perm, seed, hashfunc=shingle_hash).update_batch(shingles)`` (scheme "affine32", the
permutations taken from datasketch; a unit test checks this), but the rolling hashes, permutations
and minima are computed for a batch of texts with numpy instead of one Python object per text.

The LSH bands use the (bands, rows) that datasketch's ``MinHashLSH`` picks, but the buckets are
found by sorting band keys with numpy: datasketch's dict-of-sets storage took 10 s to fill and about
1 GB for 100,000 texts (the benchmark), this takes about a second and 16 MB.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

from tunelab.data.records import normalise_key

_WORD = re.compile(r"\w+")
_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the polynomial hashes
_SLICE_TOKENS = 400_000  # texts are processed in slices of about this many tokens to bound memory
_SMALL_BUCKET = 20  # buckets up to this size give every pair; larger ones a star and a chain


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
        h = (h + int(t) * pow(int(_P), k, 1 << 64)) % (1 << 64)
    return (h ^ (h >> 32)) & 0xFFFFFFFF


def shingles(text: str, n: int = 5, unit: str = "char") -> list[tuple[int, ...]]:
    """The n-grams of token ids; a text of at most n tokens is one shingle."""
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


def _slice_tokens(texts: Sequence[str], unit: str) -> tuple[np.ndarray, np.ndarray]:
    """All token ids of a slice of texts, concatenated, and each text's token count."""
    if unit == "word":
        docs = [tokens(t, unit) for t in texts]
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        flat = np.fromiter((t for d in docs for t in d), dtype=np.uint64, count=int(lengths.sum()))
        return flat, lengths
    norms = [normalise_key(t) for t in texts]
    lengths = np.fromiter(map(len, norms), dtype=np.int64, count=len(norms))
    # one encode for the whole slice: UTF-32 code units are the code points
    flat = np.frombuffer("".join(norms).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return flat, lengths


def _slice_hashes(flat: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Folded shingle hashes of a slice, concatenated, and each text's first offset into them."""
    total = len(flat)
    h = np.zeros(total, dtype=np.uint64)
    power = np.uint64(1)
    with np.errstate(over="ignore"):  # the polynomial is meant to wrap modulo 2^64
        for k in range(n):
            h[: total - k] += flat[k:] * power
            power = power * _P
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    windows = np.maximum(lengths - n + 1, 1)
    first = np.concatenate(([0], np.cumsum(windows)[:-1])).astype(np.int64)
    # window j of a text starts at starts + j, and never runs into the next text
    idx = np.repeat(starts, windows) + (np.arange(int(windows.sum())) - np.repeat(first, windows))
    hashes = h[np.minimum(idx, max(total - 1, 0))] if total else np.zeros(len(idx), dtype=np.uint64)
    for d in np.flatnonzero(lengths <= n):  # a whole short text is one shingle: hash it without padding
        hashes[first[d]] = shingle_hash(flat[starts[d] : starts[d] + lengths[d]].tolist())
    folded = ((hashes ^ (hashes >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return folded, first


@dataclass
class Sketches:
    """Per text: a MinHash signature row, and its sorted distinct shingle hashes (for exact Jaccard)."""

    sigs: np.ndarray  # (n, num_perm) uint32
    shingles: np.ndarray  # concatenated sorted distinct shingle hashes (uint32)
    offsets: np.ndarray  # (n + 1,) start of each text's shingles

    def jaccard(self, i: int, j: int) -> float:
        a = self.shingles[self.offsets[i] : self.offsets[i + 1]]
        b = self.shingles[self.offsets[j] : self.offsets[j + 1]]
        inter = len(np.intersect1d(a, b, assume_unique=True))
        union = len(a) + len(b) - inter
        return inter / union if union else 1.0


def sketch(
    texts: Sequence[str], num_perm: int = 128, ngram: int = 5, unit: str = "char", seed: int = 1
) -> Sketches:
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    # permutation-major layout: the min-reduction then runs along contiguous memory (5x faster)
    a = a.astype(np.uint32)[:, None]
    b = b.astype(np.uint32)[:, None]
    sigs = np.empty((len(texts), num_perm), dtype=np.uint32)
    parts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    chunk = max(1, 2_000_000 // num_perm)  # shingles per block of the permutations x shingles matrix
    buf = np.empty((num_perm, chunk), dtype=np.uint32)
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size < _SLICE_TOKENS):
            size += len(texts[end])
            end += 1
        flat, lengths = _slice_tokens(texts[start:end], unit)
        folded, first = _slice_hashes(flat, lengths, ngram)
        hv = _fmix32(folded)
        mins = np.full((num_perm, end - start), np.uint32(0xFFFFFFFF), dtype=np.uint32)
        # shingles in blocks; each block's minima are folded into the texts it touches
        for lo in range(0, len(hv), chunk):
            hi = min(len(hv), lo + chunk)
            block = buf[:, : hi - lo]
            np.multiply(a, hv[None, lo:hi], out=block)  # uint32 wraps, as the affine32 scheme intends
            np.add(block, b, out=block)
            d0 = int(np.searchsorted(first, lo, side="right")) - 1
            d1 = int(np.searchsorted(first, hi - 1, side="right"))
            cuts = np.clip(first[d0:d1], lo, hi) - lo
            cuts[0] = 0
            np.minimum(mins[:, d0:d1], np.minimum.reduceat(block, cuts, axis=1), out=mins[:, d0:d1])
        sigs[start:end] = mins.T
        # sorted distinct hashes per text: sort by (text, hash), drop repeats within a text
        doc = np.repeat(np.arange(end - start), np.diff(np.append(first, len(folded))))
        order = np.lexsort((folded, doc))
        fs, ds = folded[order], doc[order]
        keep = np.ones(len(fs), dtype=bool)
        keep[1:] = (fs[1:] != fs[:-1]) | (ds[1:] != ds[:-1])
        parts.append(fs[keep])
        counts.append(np.bincount(ds[keep], minlength=end - start))
        start = end
    all_counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(all_counts))).astype(np.int64)
    flat_sh = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    return Sketches(sigs, flat_sh, offsets)


def signatures(
    texts: Sequence[str], num_perm: int = 128, ngram: int = 5, unit: str = "char", seed: int = 1
) -> np.ndarray:
    """An ``(len(texts), num_perm)`` uint32 matrix of MinHash values."""
    return sketch(texts, num_perm, ngram, unit, seed).sigs


@functools.lru_cache(maxsize=32)  # datasketch integrates numerically to choose them: cache
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) from datasketch, for a candidate threshold 0.1 below ``threshold``.

    Bands tuned for the threshold itself miss many pairs near it (datasketch's for 0.8 propose a
    pair of Jaccard 0.8 only 40% of the time); these, weighted against false negatives, propose it
    over 99% of the time, and exact verification removes the extra candidates.
    """
    lsh = MinHashLSH(threshold=max(0.2, threshold - 0.1), num_perm=num_perm, weights=(0.1, 0.9))
    return lsh.b, lsh.r


class LshIndex:
    """Band keys for every row; candidates share a band, pairs are verified by exact Jaccard."""

    def __init__(self, sk: Sketches, threshold: float) -> None:
        self.sk = sk
        self.threshold = threshold
        n, num_perm = sk.sigs.shape
        self.bands, self.rows = lsh_params(threshold, num_perm)
        keys = np.zeros((n, self.bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for band in range(self.bands):
                h = np.full(n, band + 1, dtype=np.uint64)
                for c in range(band * self.rows, (band + 1) * self.rows):
                    h = h * _P + sk.sigs[:, c].astype(np.uint64)
                keys[:, band] = h
        self.keys = keys
        # a candidate whose MinHash estimate is this far below the threshold is not checked exactly (4 sd)
        self._slack = max(0.1, 4 * (0.25 / num_perm) ** 0.5)

    def __len__(self) -> int:
        return len(self.keys)

    def candidate_pairs(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (i < j) pairs of ``rows`` (default all) that share at least one band."""
        rows = np.arange(len(self.keys)) if rows is None else np.asarray(rows, dtype=np.int64)
        left: list[np.ndarray] = []
        right: list[np.ndarray] = []
        for band in range(self.bands):
            i, j = _bucket_pairs(self.keys[rows, band])
            left.append(rows[i])
            right.append(rows[j])
        if not left:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        li, ri = np.concatenate(left), np.concatenate(right)
        lo, hi = np.minimum(li, ri), np.maximum(li, ri)
        code = np.unique(lo * len(self.keys) + hi)
        return code // len(self.keys), code % len(self.keys)

    def candidates(self, i: int) -> list[int]:
        """Rows sharing a band with row ``i`` (a single query)."""
        return [int(j) for j in np.flatnonzero((self.keys == self.keys[i]).any(axis=1)) if j != i]

    def similarity(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Jaccard of row pairs: exact where the MinHash estimate nears the threshold, else the estimate."""
        if len(i) == 0:
            return np.zeros(0)
        est = (self.sk.sigs[i] == self.sk.sigs[j]).mean(axis=1)
        for k in np.flatnonzero(est >= self.threshold - self._slack):
            est[k] = self.sk.jaccard(int(i[k]), int(j[k]))
        return est

    def pairs(self, rows: np.ndarray | None = None) -> list[tuple[int, int, float]]:
        """Every candidate pair (i < j) whose Jaccard reaches the threshold."""
        li, ri = self.candidate_pairs(rows)
        sim = self.similarity(li, ri)
        keep = sim >= self.threshold
        return list(zip(li[keep].tolist(), ri[keep].tolist(), sim[keep].tolist(), strict=True))


def _bucket_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i < j) that share a key: every pair in small buckets, a star plus a chain in large
    ones (enough to connect a cluster without the quadratic blow-up of a bucket of 1,000 copies)."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    new = np.ones(len(k), dtype=bool)
    new[1:] = k[1:] != k[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(k)))
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    for size in np.unique(sizes[sizes > 1]).tolist():
        begin = starts[sizes == size]
        if size <= _SMALL_BUCKET:
            a, b = np.triu_indices(size, 1)
            left.append((begin[:, None] + a[None, :]).ravel())
            right.append((begin[:, None] + b[None, :]).ravel())
        else:
            offs = np.arange(1, size)
            left.append(np.repeat(begin, size - 1))  # star from the first member
            right.append((begin[:, None] + offs[None, :]).ravel())
            left.append((begin[:, None] + offs[None, :] - 1).ravel())  # chain of neighbours
            right.append((begin[:, None] + offs[None, :]).ravel())
    if not left:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return order[np.concatenate(left)], order[np.concatenate(right)]


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
