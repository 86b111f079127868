"""Diversity and quality metrics of generated text: pure functions over lists of strings.

Word-level metrics share one tokenisation, :func:`words`. Diversity: distinct-n (Li et al. 2016),
self-BLEU (Zhu et al. 2018, Texygen; via sacrebleu), unigram entropy, the repetition rate of
degeneration loops, and the mean pairwise cosine of sentence embeddings. Quality: perplexity under a
causal LM (typically the base model) and ROUGE-L against references.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab.generate.config import DIVERSITY_METRICS
from tunelab.generate.embed import embed

if TYPE_CHECKING:
    from tunelab.generate.embed import Embedder

TOKEN = re.compile(r"\w+|[^\w\s]")
LOWER_IS_MORE_DIVERSE = frozenset({"self_bleu", "embedding_similarity", "repetition_rate"})


def words(text: str) -> list[str]:
    """The tokens every word-level metric uses: ``re.findall(r"\\w+|[^\\w\\s]", text.lower())``.

    Lower-cased runs of word characters, and each other non-space character alone (punctuation).
    """
    return TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The ``n``-grams of one token list, in order (none when it is shorter than ``n``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / total n-grams, pooled over all texts (n-grams never span two texts); 0.0 if none."""
    grams = [g for text in texts for g in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: Sequence[str], *, max_hypotheses: int | None = 500, seed: int = 0) -> float | None:
    """Mean sentence BLEU (0-1) of each text against all the other texts as references.

    Texts are tokenised by :func:`words` (sacrebleu then splits on spaces only); texts with no words
    have no n-grams and are left out, as hypotheses and as references. ``None`` when fewer than two
    texts remain. Identical texts give 1.0, texts sharing no word 0.0. Each hypothesis costs a pass
    over all references, so above ``max_hypotheses`` texts a seeded sample of them is scored (as
    Texygen does), each still against every other text.
    """
    from sacrebleu.metrics import BLEU

    tokenised = [" ".join(w) for w in map(words, texts) if w]
    if len(tokenised) < 2:
        return None
    bleu = BLEU(effective_order=True, tokenize="none")
    hyps = list(range(len(tokenised)))
    if max_hypotheses is not None and len(hyps) > max_hypotheses:
        hyps = sorted(random.Random(seed).sample(hyps, max_hypotheses))
    scores = [
        bleu.sentence_score(tokenised[i], tokenised[:i] + tokenised[i + 1 :]).score / 100.0 for i in hyps
    ]
    return float(np.mean(scores))


def token_entropy(texts: Sequence[str]) -> float:
    """Shannon entropy in bits of the unigram distribution over all words of all texts (0.0 if none)."""
    counts = np.array(list(Counter(w for text in texts for w in words(text)).values()), dtype=float)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()  # one line of numpy; scipy.stats.entropy would add an undeclared dependency
    return float(-(p * np.log2(p)).sum())


def repetition_rate(texts: Sequence[str], n: int = 4) -> float:
    """Share of n-grams that repeat an earlier n-gram of the same text, pooled over texts.

    Measures degeneration loops ("x y x y x y" with n=2: 3 of its 5 bigrams are repeats). A text
    shorter than ``n`` words has no n-grams and adds nothing; 0.0 when no text has any.
    """
    repeats = total = 0
    for text in texts:
        grams = ngrams(words(text), n)
        repeats += len(grams) - len(set(grams))  # each occurrence after a gram's first one
        total += len(grams)
    return repeats / total if total else 0.0


def mean_cosine(vectors: np.ndarray) -> float | None:
    """Mean cosine similarity over all distinct pairs of rows (unit-normalised here); ``None`` below 2 rows.

    Uses sum_{i != j} v_i . v_j = |sum_i v_i|^2 - sum_i |v_i|^2: no n-by-n matrix.
    """
    n = len(vectors)
    if n < 2:
        return None
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    pair_sum = float(np.square(v.sum(axis=0)).sum() - np.square(v).sum())
    return float(np.clip(pair_sum / (n * (n - 1)), -1.0, 1.0))


def embedding_similarity(texts: Sequence[str], embedder: Embedder | None = None) -> float | None:
    """Mean pairwise cosine similarity of the texts' sentence embeddings; ``None`` for fewer than 2 texts.

    ``embedder``: from :func:`tunelab.generate.embed.load_embedder`; default the bundled MiniLM.
    """
    if len(texts) < 2:
        return None
    return mean_cosine(embed(list(texts), embedder=embedder))


def higher_is_more_diverse(name: str) -> bool:
    """Whether a larger value of diversity metric ``name`` means more diverse text."""
    if name not in DIVERSITY_METRICS:
        raise ValueError(f"unknown diversity metric {name!r}; known: {', '.join(DIVERSITY_METRICS)}")
    return name not in LOWER_IS_MORE_DIVERSE


def _diversity(texts: Sequence[str], vectors: np.ndarray | None) -> dict[str, float | None]:
    """Every metric of ``DIVERSITY_METRICS``; embedding similarity from ``vectors`` (``None``: skipped)."""
    out: dict[str, float | None] = {
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3": distinct_n(texts, 3),
        "self_bleu": self_bleu(texts),
        "entropy": token_entropy(texts),
        "repetition_rate": repetition_rate(texts),
        "embedding_similarity": None if vectors is None else mean_cosine(vectors),
    }
    return out


def diversity(
    texts: Sequence[str], embedder: Embedder | None = None, include_embedding: bool = True
) -> dict[str, float | None]:
    """Every metric named in ``DIVERSITY_METRICS`` over ``texts``, in that order.

    ``embedding_similarity`` is ``None`` when ``include_embedding`` is false (no model is loaded) or
    with fewer than 2 texts, as is ``self_bleu`` below 2 texts with words.
    """
    vectors = embed(list(texts), embedder=embedder) if include_embedding and len(texts) >= 2 else None
    return _diversity(texts, vectors)


def per_prompt_diversity(
    groups: Sequence[Sequence[str]], embedder: Embedder | None = None, include_embedding: bool = True
) -> dict[str, dict[str, float | None]]:
    """``{"within": ..., "across": ...}``, each a ``diversity`` dict.

    ``within``: each metric computed among the samples of one prompt, then averaged over prompts (the
    number a decoding sweep compares: how different the samples of the same prompt are); a prompt
    whose value is ``None`` (fewer than 2 samples) is left out of that mean, ``None`` if all are.
    ``across``: the metrics over all outputs of all prompts together. Texts are embedded once.
    """
    flat = [t for g in groups for t in g]
    vectors = embed(flat, embedder=embedder) if include_embedding and flat else None
    per_group, at = [], 0
    for g in groups:
        per_group.append(_diversity(g, None if vectors is None else vectors[at : at + len(g)]))
        at += len(g)
    within: dict[str, float | None] = {}
    for name in DIVERSITY_METRICS:
        values = [d[name] for d in per_group if d[name] is not None]
        within[name] = float(np.mean(values)) if values else None
    return {"within": within, "across": _diversity(flat, vectors)}


def encode_pairs(
    tokenizer: Any, prompts: Sequence[str], outputs: Sequence[str]
) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of rendered prompts and of their outputs, each string encoded on its own.

    A prompt rendered through a chat template already holds its special tokens, so with a chat template
    prompts get none added; without one they get the tokenizer's usual ones (a BOS, say). Outputs never do.
    """
    if len(prompts) != len(outputs):
        raise ValueError(f"{len(prompts)} prompts but {len(outputs)} outputs")
    special = getattr(tokenizer, "chat_template", None) is None
    prompt_ids = [tokenizer(p, add_special_tokens=special)["input_ids"] for p in prompts]
    output_ids = [tokenizer(o, add_special_tokens=False)["input_ids"] for o in outputs]
    return prompt_ids, output_ids


def perplexity(
    model: Any,
    pad_id: int,
    prompt_ids: Sequence[Sequence[int]],
    output_ids: Sequence[Sequence[int]],
    *,
    batch_size: int = 8,
    precision: str = "fp32",
) -> float | None:
    """Perplexity of each output given its prompt under causal LM ``model``, pooled over output tokens.

    ``exp(total NLL / total output tokens)``: longer outputs weigh more. Takes token ids (the
    generator's own, or :func:`encode_pairs` of strings) so the tokens scored are exactly the ones
    generated. Empty outputs add nothing; ``None`` when no output has a token. Every prompt with an
    output needs at least one token (the first output token is predicted from the prompt).
    """
    from tunelab.models.scoring import token_logprobs

    if any(len(o) and not len(p) for p, o in zip(prompt_ids, output_ids, strict=False)):
        raise ValueError("an output with an empty prompt: it needs at least one prompt token (a BOS, say)")
    rows = token_logprobs(model, pad_id, prompt_ids, output_ids, batch_size=batch_size, precision=precision)
    total = sum(len(r) for r in rows)
    if total == 0:
        return None
    nll = -float(sum(r.sum() for r in rows))
    return math.exp(nll / total)


def rouge_l_mean(outputs: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure of outputs against their references (``tunelab.metrics.text``)."""
    from tunelab.metrics.text import rouge_l_scores

    scores = rouge_l_scores(outputs, references)
    if not scores:
        raise ValueError("no outputs to score")
    return float(np.mean(scores))
