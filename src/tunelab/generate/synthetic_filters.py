"""The filters a synthetic candidate passes, in order: empty, parse, length, exact duplicate, near
duplicate, ROUGE-L, label; each compares against the seeds, the protected rows and the rows kept so far.

Exact duplicates compare the data stage's normalised key; near duplicates reuse the data stage's
MinHash code (:mod:`tunelab.data.minhash`, with the data stage's default shingles), so a row kept
here is not one the data stage would later fold into a near-duplicate cluster. ROUGE-L (the
self-instruct filter) is scored by :func:`tunelab.metrics.text.rouge_l_scores`; a sparse token
overlap bound skips the pairs that cannot reach the threshold, since scoring every candidate
against every seed one pair at a time in Python would take minutes on a large train split.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rouge_score import tokenizers
from scipy import sparse

from tunelab.config.data import NearDupConfig
from tunelab.data.minhash import LshIndex, Sketches, sketch
from tunelab.data.records import normalise_key
from tunelab.generate.config import SyntheticConfig
from tunelab.metrics.text import rouge_l_scores

# Why a candidate was dropped, in the order the filters run.
DROP_REASONS = (
    "empty",
    "unparseable",
    "too_short",
    "too_long",
    "exact_duplicate",
    "near_duplicate",
    "rouge_l",
    "label_disagrees",
)
REASON_TEXT = {
    "empty": "empty",
    "unparseable": "unparseable",
    "too_short": "too short",
    "too_long": "too long",
    "exact_duplicate": "exact duplicates",
    "near_duplicate": "near duplicates",
    "rouge_l": "too similar by ROUGE-L",
    "label_disagrees": "label disagreements",
}

_QA = re.compile(
    r"\**\s*question\s*\**\s*:\s*\**\s*(?P<q>.+?)\s*\n[\s*#]*answer\s*\**\s*:\s*\**\s*(?P<a>.+)",
    re.IGNORECASE | re.DOTALL,
)
_NEXT_Q = re.compile(r"\n[\s*#]*question\s*\**\s*:", re.IGNORECASE)
_TEXT_TAG = re.compile(r"^\s*\**\s*text\s*\**\s*:\s*", re.IGNORECASE)
_NEXT_TEXT = re.compile(r"\n[\s*#]*text\s*\**\s*:", re.IGNORECASE)
_QUOTES = ('"', "'", "\u201c\u201d", "\u2018\u2019")


def parse_pair(output: str) -> tuple[str, str] | None:
    """``(question, answer)`` from ``Question: ...\\nAnswer: ...``; a second pair after it is cut off."""
    m = _QA.search(output)
    if m is None:
        return None
    question = m["q"].strip().strip("*").strip()
    answer = _NEXT_Q.split(m["a"], maxsplit=1)[0].strip().strip("*").strip()
    return (question, answer) if question and answer else None


def parse_text(output: str) -> str:
    """The text of a labeled output: a leading ``Text:`` and surrounding quotes removed."""
    text = _NEXT_TEXT.split(_TEXT_TAG.sub("", output, count=1), maxsplit=1)[0].strip()
    for q in _QUOTES:
        first, last = q[0], q[-1]
        if len(text) >= 2 and text[0] == first and text[-1] == last:
            return text[1:-1].strip()
    return text


def word_count(text: str) -> int:
    return len(text.split())


def _concat(a: Sketches, b: Sketches) -> Sketches:
    """Two sketch sets as one (rows of ``a`` first)."""
    return Sketches(
        sigs=np.vstack([a.sigs, b.sigs]),
        shingles=np.concatenate([a.shingles, b.shingles]),
        offsets=np.concatenate([a.offsets[:-1], b.offsets + a.offsets[-1]]),
    )


class NearIndex:
    """Near-duplicate search of candidates against a fixed pool, the kept rows and each other."""

    def __init__(self, fixed: Sequence[str], threshold: float) -> None:
        self.near = NearDupConfig()  # the data stage's shingles: char 5-grams, 128 permutations
        self.threshold = threshold
        self.fixed = self._sketch(fixed)
        self.kept: list[str] = []

    def _sketch(self, texts: Sequence[str]) -> Sketches:
        return sketch(list(texts), self.near.num_perm, self.near.ngram, self.near.unit)

    def matches(self, texts: Sequence[str]) -> list[dict[int, float]]:
        """Per text: ``{partner: Jaccard}`` of every partner at or above the threshold.

        A partner ``p < 0`` is a pool or kept row; ``p >= 0`` is another of ``texts``.
        """
        sk = _concat(self.fixed, self._sketch([*self.kept, *texts]))
        base = len(self.fixed.sigs) + len(self.kept)
        index = LshIndex(sk, self.threshold)
        lo, hi = index.candidate_pairs()
        mine = hi >= base  # pairs are (lo < hi) and the texts come last: hi is one of them
        lo, hi = lo[mine], hi[mine]
        sim = index.similarity(lo, hi)
        out: list[dict[int, float]] = [{} for _ in texts]
        for i, j, s in zip(lo.tolist(), hi.tolist(), sim.tolist(), strict=True):
            if s < self.threshold:
                continue
            if i >= base:  # two of the texts
                out[j - base][i - base] = s
                out[i - base][j - base] = s
            else:
                out[j - base][-1 - i] = s
        return out

    def add(self, texts: Sequence[str]) -> None:
        self.kept.extend(texts)


class RougePool:
    """ROUGE-L of candidates against the seeds and kept rows, scoring only pairs that could exceed it.

    ROUGE-L F = 2·LCS/(m+n), and the LCS is at most the multiset token overlap, which is a sparse
    matrix product over (token, occurrence) features. The tokens are rouge_score's own (stemmed),
    as the scorer in :mod:`tunelab.metrics.text` uses them, so the bound holds exactly.
    """

    def __init__(self, refs: Sequence[str], threshold: float) -> None:
        self.threshold = threshold
        self._tok = tokenizers.DefaultTokenizer(use_stemmer=True)
        self._vocab: dict[tuple[str, int], int] = {}
        self.refs: list[str] = []
        self._rows: list[list[int]] = []
        self.add(refs)

    def _features(self, text: str) -> list[int]:
        seen: Counter[str] = Counter()
        out = []
        for t in self._tok.tokenize(text):
            seen[t] += 1
            out.append(self._vocab.setdefault((t, seen[t]), len(self._vocab)))
        return out

    def _matrix(self, rows: list[list[int]]) -> sparse.csr_matrix:
        indptr = np.cumsum([0, *map(len, rows)])
        indices = np.fromiter((f for r in rows for f in r), dtype=np.int64, count=int(indptr[-1]))
        data = np.ones(len(indices), dtype=np.float32)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), max(len(self._vocab), 1)))

    def add(self, texts: Sequence[str]) -> None:
        self.refs.extend(texts)
        self._rows.extend(self._features(t) for t in texts)

    def bounds(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Upper bounds of ROUGE-L F: ``texts`` x refs, and ``texts`` x ``texts``."""
        rows = [self._features(t) for t in texts]
        cand = self._matrix(rows)
        refs = self._matrix(self._rows)
        n_c = np.array([len(r) for r in rows], dtype=np.float64)
        n_r = np.array([len(r) for r in self._rows], dtype=np.float64)

        def bound(other: sparse.csr_matrix, n_o: np.ndarray) -> np.ndarray:
            overlap = (cand @ other.T).toarray() if other.shape[0] and cand.shape[0] else None
            if overlap is None:
                return np.zeros((len(rows), other.shape[0]))
            return 2 * overlap / np.maximum(n_c[:, None] + n_o[None, :], 1.0)

        return bound(refs, n_r), bound(cand, n_c)

    def too_similar(self, text: str, others: list[str]) -> bool:
        """Whether ROUGE-L of ``text`` to any of ``others`` is above the threshold."""
        if not others:
            return False
        return max(rouge_l_scores([text] * len(others), others)) > self.threshold


def keys(kind: str, question: str, answer: str) -> list[str]:
    """The texts a candidate must not repeat: a pair's question and question + answer; a labeled text."""
    return [question, f"{question}\n{answer}"] if kind == "instruction" else [question]


@dataclass
class Candidate:
    """One model output on its way through the filters (``question`` holds a labeled row's text)."""

    index: int
    label: str | None
    shown: list[int]
    raw: str = ""
    question: str = ""
    answer: str = ""
    dropped: str | None = None


@dataclass
class RowFilter:
    """The filters with their pools; :meth:`apply` runs one round's candidates through them.

    Exact and near duplicates check a pair's question and its question + answer (a new answer to an
    evaluation question still leaks it); ROUGE-L compares questions, as self-instruct compares
    instructions, with the seeds' and the kept rows'.
    """

    cfg: SyntheticConfig
    kind: str
    fixed: list[str]  # seed keys and protected texts
    rouge_refs: list[str]  # the seeds' questions (texts)
    check_label: bool
    dropped: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(DROP_REASONS, 0)))
    surplus: int = 0

    def __post_init__(self) -> None:
        self.exact = {normalise_key(t) for t in self.fixed}
        self.near = NearIndex(self.fixed, self.cfg.near_duplicate_threshold)
        self.rouge = RougePool(self.rouge_refs, self.cfg.rouge_threshold)

    @property
    def names(self) -> list[str]:
        parse = ["parse"] if self.kind == "instruction" else []
        return ["empty", *parse, "length", "exact_duplicate", "near_duplicate", "rouge_l"] + (
            ["label"] if self.check_label else []
        )

    def stateless(self, c: Candidate) -> None:
        """Empty, parse and length: the filters that look at the candidate alone."""
        if not c.raw.strip():
            c.dropped = "empty"
            return
        if self.kind == "instruction":
            pair = parse_pair(c.raw)
            if pair is None:
                c.dropped = "unparseable"
                return
            c.question, c.answer = pair
        else:
            c.question = parse_text(c.raw)
            if not c.question:
                c.dropped = "empty"
                return
        words = word_count(c.question) + word_count(c.answer)
        if words < self.cfg.min_words:
            c.dropped = "too_short"
        elif words > self.cfg.max_words:
            c.dropped = "too_long"

    def apply(self, cands: list[Candidate], classify, room: Counter) -> list[Candidate]:
        """The candidates kept, in order; ``room`` (rows still wanted per label) is used up as they are.

        Rows past a full label are surplus. ``classify`` gives the labels of the texts (or None).
        """
        for c in cands:
            self.stateless(c)
        live = [c for c in cands if c.dropped is None]
        preds = classify([c.question for c in live]) if self.check_label and live else [None] * len(live)
        rows = [(s, k) for s, c in enumerate(live) for k in keys(self.kind, c.question, c.answer)]
        partners: list[set[int]] = [set() for _ in live]  # -1: the pool; s >= 0: another live candidate
        for (s, _), m in zip(rows, self.near.matches([k for _, k in rows]), strict=True):
            partners[s] |= {-1 if p < 0 else rows[p][0] for p in m} - {s}
        thr = self.cfg.rouge_threshold
        to_refs, to_live = self.rouge.bounds([c.question for c in live])
        kept: list[int] = []
        for s, c in enumerate(live):
            if room[c.label] <= 0:
                self.surplus += 1
                continue
            ks = keys(self.kind, c.question, c.answer)
            if any(normalise_key(k) in self.exact for k in ks):
                c.dropped = "exact_duplicate"
            elif any(p < 0 or p in kept for p in partners[s]):
                c.dropped = "near_duplicate"
            elif self.rouge.too_similar(
                c.question,
                [self.rouge.refs[j] for j in (to_refs[s] > thr).nonzero()[0]]
                + [live[t].question for t in kept if to_live[s, t] > thr],
            ):
                c.dropped = "rouge_l"
            elif self.check_label and str(preds[s]) != c.label:
                c.dropped = "label_disagrees"
            if c.dropped is None:
                self.exact.update(normalise_key(k) for k in ks)
                kept.append(s)
                room[c.label] -= 1
        self.dropped.update(c.dropped for c in cands if c.dropped)
        out = [live[s] for s in kept]
        self.near.add([k for c in out for k in keys(self.kind, c.question, c.answer)])
        self.rouge.add([c.question for c in out])
        return out
