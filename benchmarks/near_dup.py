"""Near-duplicate detection over 100,000 short texts built from the bundled data, with planted copies.

Corpus: distinct texts from Rotten Tomatoes (reviews, and synopsis sentences) and chatterbot, topped
up with splices (the first half of one text + the second half of another: realistic hard negatives
that share half their shingles), plus perturbed copies of random texts (typos, dropped or swapped
words, case and punctuation changes). The planted copies are the ground truth.

Runs the data stage's own code path (``tunelab.data.dedup.near_dedup``) and prints the time, the
peak memory and precision/recall.

    python benchmarks/near_dup.py [--n 100000] [--copies 20000] [--threshold 0.8] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import time

import yaml

from tunelab.config.data import DataConfig
from tunelab.data.bundled import bundled_files, read_rotten_tomatoes
from tunelab.data.dedup import DupReport, near_dedup
from tunelab.data.minhash import UnionFind, shingles
from tunelab.data.records import Record, normalise_key


def base_texts() -> list[str]:
    """Distinct texts (by normalised form) of at least 40 characters from the bundled data."""
    found: list[str] = []
    for raw in read_rotten_tomatoes().rows:
        text = (raw.row or {}).get("text") or ""
        parts = re.split(r"(?<=[.!?])\s+", text) if raw.row and raw.row.get("category") == "plot" else [text]
        found.extend(p.strip() for p in parts)
    for f in bundled_files("chatterbot"):
        for conv in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("conversations") or []:
            found.extend(str(t) for t in conv)
    seen: set[str] = set()
    out = []
    for t in found:
        key = normalise_key(t)
        if len(key) >= 40 and key not in seen:
            seen.add(key)
            out.append(t)
    return out


def splice(rng: random.Random, a: str, b: str) -> str:
    wa, wb = a.split(), b.split()
    return " ".join(wa[: max(1, len(wa) // 2)] + wb[len(wb) // 2 :])


def perturb(rng: random.Random, text: str) -> str:
    """One to a few small edits, about one per 60 characters, like a re-posted or re-typed copy."""
    words = text.split()
    for _ in range(max(1, len(text) // 60)):
        op = rng.choice(["typo", "drop", "swap", "case", "punct", "space"])
        i = rng.randrange(len(words))
        w = words[i]
        if op == "typo" and len(w) > 1:
            j = rng.randrange(len(w))
            words[i] = w[:j] + rng.choice("abcdefghijklmnopqrstuvwxyz") + w[j + 1 :]
        elif op == "drop" and len(words) > 4:
            del words[i]
        elif op == "swap" and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == "case":
            words[i] = w.upper() if w.islower() else w.lower()
        elif op == "punct":
            words[i] = w.rstrip(".,!?;:") + rng.choice([",", ".", "!", ""])
        else:
            words[i] = " " + w
    return " ".join(words)


def build(n: int, copies: int, seed: int) -> tuple[list[str], dict[int, int]]:
    rng = random.Random(seed)
    bases = base_texts()
    originals = rng.sample(bases, min(len(bases), n - copies))
    seen = {normalise_key(t) for t in originals}
    while len(originals) < n - copies:
        t = splice(rng, rng.choice(bases), rng.choice(bases))
        if normalise_key(t) not in seen:
            seen.add(normalise_key(t))
            originals.append(t)
    texts = list(originals)
    planted: dict[int, int] = {}  # copy index -> original index
    for _ in range(copies):
        src = rng.randrange(len(originals))
        planted[len(texts)] = src
        texts.append(perturb(rng, originals[src]))
    order = list(range(len(texts)))
    rng.shuffle(order)  # copies must not all sit after their originals
    where = {old: new for new, old in enumerate(order)}
    return [texts[i] for i in order], {where[c]: where[o] for c, o in planted.items()}


def jaccard(a: str, b: str, n: int) -> float:
    sa, sb = set(shingles(a, n)), set(shingles(b, n))
    return len(sa & sb) / len(sa | sb)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--copies", type=int, default=20_000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    texts, planted = build(args.n, args.copies, args.seed)
    print(
        f"corpus: {len(texts):,} texts ({len(planted):,} planted copies), built in "
        f"{time.perf_counter() - t0:.1f}s; median length {sorted(map(len, texts))[len(texts) // 2]} chars"
    )
    cfg = DataConfig(
        sources=[{"path": "x.jsonl"}],
        dedup={"near": {"threshold": args.threshold, "num_perm": args.num_perm, "ngram": args.ngram}},
    )
    records = [Record(source=f"bench:{i}", raw=None, origin=0, text=t) for i, t in enumerate(texts)]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    report = DupReport()
    _kept, near = near_dedup(records, cfg, lambda *a: None, report, 0)
    seconds = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS

    uf = UnionFind(len(texts))
    for members in near.clusters:
        for k in members[1:]:
            uf.union(members[0], k)
    found = sum(uf.find(c) == uf.find(o) for c, o in planted.items())
    true_j = {c: jaccard(texts[c], texts[o], args.ngram) for c, o in planted.items()}
    eligible = [c for c, j in true_j.items() if j >= args.threshold]
    found_eligible = sum(uf.find(c) == uf.find(planted[c]) for c in eligible)
    pairs = near.index.pairs()
    family = {c: o for c, o in planted.items()}
    planted_pairs = sum(family.get(i, i) == family.get(j, j) for i, j, _ in pairs)
    truly_near = sum(jaccard(texts[i], texts[j], args.ngram) >= args.threshold for i, j, _ in pairs)

    print(
        f"near-dup detection: {seconds:.1f}s wall on this machine, threshold {args.threshold}, "
        f"num_perm {args.num_perm}, char {args.ngram}-grams"
    )
    print(
        f"peak memory: {rss1 * scale / 2**20:.0f} MiB process RSS ({(rss1 - rss0) * scale / 2**20:.0f} MiB "
        f"added by detection)"
    )
    print(
        f"pairs reported: {len(pairs):,} in {report.near_clusters:,} clusters; rows removed: "
        f"{report.near_removed:,}"
    )
    print(
        f"recall (planted copies clustered with their original): {found / len(planted):.4f} "
        f"({found:,}/{len(planted):,})"
    )
    print(
        f"recall on planted copies whose true Jaccard >= threshold ({len(eligible):,}): "
        f"{found_eligible / max(1, len(eligible)):.4f}"
    )
    print(
        f"precision (reported pairs whose true shingle Jaccard >= threshold): "
        f"{truly_near / max(1, len(pairs)):.4f}"
    )
    print(
        f"precision against planted pairs only (natural duplicates in the data count as misses): "
        f"{planted_pairs / max(1, len(pairs)):.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
