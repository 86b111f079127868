"""Synthetic rows: exact counts, provenance, every filter with its reason, rounds, labels, the data stage."""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

import pytest

from tunelab.config import validate_recipe
from tunelab.data.records import normalise_key
from tunelab.generate.config import SyntheticConfig
from tunelab.generate.synthetic import protected_texts, resolve_kind, synthesize, write
from tunelab.generate.synthetic_filters import parse_pair, parse_text
from tunelab.pipeline import run_stage
from tunelab.runs import RunDir, read_jsonl

PROVENANCE = {
    "model": "fake-lm",
    "adapter_hash": "abc123",
    "template_hash": "t0",
    "decoding": {"temperature": 1},
}


def words(rng: random.Random, k: int) -> list[str]:
    """Random letter words: two such sentences share almost no shingles or word sequences."""
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8))) for _ in range(k)]


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def qa(q: str, a: str) -> str:
    return f"Question: {q}\nAnswer: {a}"


def fresh(rng: random.Random) -> str:
    return qa(" ".join(words(rng, 10)) + " ?", " ".join(words(rng, 5)))


SEED_RNG = random.Random(1)
SEEDS = [chat(" ".join(words(SEED_RNG, 24)) + " ?", " ".join(words(SEED_RNG, 6))) for _ in range(8)]
VALIDATION = [chat(" ".join(words(SEED_RNG, 20)) + " ?", " ".join(words(SEED_RNG, 6))) for _ in range(4)]


def question(row: dict) -> str:
    return row["messages"][0]["content"]


def answer(row: dict) -> str:
    return row["messages"][1]["content"]


def shingles(text: str) -> set[str]:
    t = normalise_key(text)
    return {t[i : i + 5] for i in range(max(len(t) - 4, 1))}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def run(cfg: SyntheticConfig, gen, seed: int = 0, **kw):
    args = {"kind": "instruction", "seeds": SEEDS, "protected": protected_texts(VALIDATION)} | kw
    return synthesize(cfg, generate_fn=gen, provenance=dict(PROVENANCE), seed=seed, **args)


def test_asks_for_n_and_gets_exactly_n_rows_with_provenance() -> None:
    rng = random.Random(5)
    calls: list[tuple[int, int]] = []

    def gen(prompts: list[str], round_index: int) -> list[str]:
        calls.append((round_index, len(prompts)))
        assert all("Question:" in p and "Answer:" in p for p in prompts)
        return [fresh(rng) for _ in prompts]

    res = run(SyntheticConfig(n=7), gen)
    assert len(res.rows) == 7 and res.report["complete"] and res.report["kept"] == 7
    assert calls == [(0, 11)]  # 1.5 x 7, rounded up
    assert res.report["produced"] == 11 and res.report["surplus"] == 4
    assert res.report["reason"] == "7 of 7 rows in 1 round"
    for i, row in enumerate(res.rows):
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert question(row).endswith("?") and answer(row)
        prov = row["provenance"]
        assert {k: prov[k] for k in PROVENANCE} == PROVENANCE
        assert prov["round"] == 0 and prov["candidate"] == i and prov["seed"] == 0
        assert len(prov["seed_examples"]) == 3 and all(0 <= j < len(SEEDS) for j in prov["seed_examples"])
        assert prov["filters"] == dict.fromkeys(
            ["empty", "parse", "length", "exact_duplicate", "near_duplicate", "rouge_l"], "pass"
        )


def test_each_bad_output_is_filtered_with_its_reason() -> None:
    rng = random.Random(9)
    s0, s1, v0 = SEEDS[0], SEEDS[1], VALIDATION[0]
    near_q = question(s1).split()
    near_q[10] = "different"  # one word of 25 changed: Jaccard ~0.89
    near_v = question(v0).split()
    near_v[3] = "changed"
    reworded = question(s0).split()
    for i in range(0, 24, 4):  # every fourth word new: shingles mostly differ, ROUGE-L stays 0.75
        reworded[i] = words(rng, 1)[0]
    good_q = " ".join(words(rng, 24)) + " ?"
    good = qa(good_q, "a new answer")
    good_near = good_q.split()
    good_near[5] = "other"
    good_reworded = good_q.split()
    for i in range(1, 24, 4):
        good_reworded[i] = words(rng, 1)[0]
    bad = {
        "exact_duplicate": [
            qa(question(s0), answer(s0)),
            qa(question(s1).upper(), "some other answer here"),  # the same question, shouted
            qa("  " + "   ".join(question(v0).split()), answer(v0)),  # a validation row, spaced out
            good,  # a second copy of a synthetic row kept earlier in the round
        ],
        "near_duplicate": [
            qa(" ".join(near_q), answer(s1)),
            qa(" ".join(near_v), "an answer nobody gave"),
            qa(" ".join(good_near), "near the row kept first"),
        ],
        "empty": ["", "   \n "],
        "unparseable": ["lorem ipsum with no format at all", "Question: only a question here"],
        "too_short": [qa("why", "yes")],
        "too_long": [qa(" ".join(words(rng, 70)), "done")],
        "rouge_l": [
            qa(" ".join(reworded), " ".join(words(rng, 5))),
            qa(" ".join(good_reworded), "like the row kept first"),
        ],
    }
    # so ROUGE-L, not MinHash, must catch these
    assert jaccard(" ".join(reworded), question(s0)) < 0.8 and jaccard(" ".join(good_reworded), good_q) < 0.8
    first = [good] + [x for xs in bad.values() for x in xs]

    def gen(prompts: list[str], round_index: int) -> list[str]:
        out = first if round_index == 0 else []
        return (out + [fresh(rng) for _ in prompts])[: len(prompts)]

    res = run(SyntheticConfig(n=20, min_words=4, max_words=60), gen)
    assert len(res.rows) == 20 and res.report["complete"]
    expected = {k: len(v) for k, v in bad.items()} | {"label_disagrees": 0}
    assert res.report["dropped"] == expected
    # round 0: 30 candidates, 15 bad, 15 kept (rate 0.5); round 1 asks 1.2 / 0.5 = 2.4 x the 5
    # missing, rounded up: 12
    assert [r["kept"] for r in res.report["per_round"]] == [15, 5]
    assert res.report["produced"] == 30 + 12 and res.report["surplus"] == 7
    pools = [question(r) for r in SEEDS + VALIDATION] + [
        f"{question(r)}\n{answer(r)}" for r in SEEDS + VALIDATION
    ]
    keys = {normalise_key(p) for p in pools}
    for row in res.rows:
        q = question(row)
        assert normalise_key(q) not in keys
        assert max(jaccard(q, p) for p in pools) < 0.8
    kept = [question(r) for r in res.rows]
    assert len({normalise_key(q) for q in kept}) == 20


def test_round_limit_reports_how_many_and_why() -> None:
    rng = random.Random(3)

    def gen(prompts: list[str], round_index: int) -> list[str]:
        copies = [qa(question(SEEDS[i % 8]), answer(SEEDS[i % 8])) for i in range(len(prompts) - 1)]
        return [fresh(rng), *copies]

    res = run(SyntheticConfig(n=20, max_rounds=3), gen)
    rep = res.report
    assert len(res.rows) == 3 and not rep["complete"] and rep["rounds"] == 3
    # one kept per round: the keep rate is tiny, so later rounds ask the 4x cap of what is missing
    assert [r["candidates"] for r in rep["per_round"]] == [30, 4 * 19, 4 * 18]
    assert rep["produced"] == 178 and rep["dropped"]["exact_duplicate"] == 175
    assert rep["reason"] == "stopped after 3 rounds: 3 of 20 rows; 175 exact duplicates"
    assert [r["provenance"]["round"] for r in res.rows] == [0, 1, 2]
    card = res.card_markdown()
    assert "3 of 20 rows" in card and "| exact duplicates | 175 |" in card and "fake-lm" in card


LABEL_RNG = random.Random(2)
LABELED_SEEDS = [
    {"text": " ".join(words(LABEL_RNG, 8)), "label": lab} for lab in ("pos", "neg") for _ in range(4)
]


def labeled_gen(flip: set[int]):
    rng = random.Random(4)
    seen: list[str] = []

    def gen(prompts: list[str], round_index: int) -> list[str]:
        out = []
        for i, p in enumerate(prompts):
            cls = re.search(r'of the class "(\w+)"', p).group(1)
            mark = " zzflip" if round_index == 0 and i in flip else ""
            out.append(f'Text: "{" ".join(words(rng, 8))} {cls}{mark}"')
        seen.extend(out)
        return out

    return gen


def classify(texts: list[str]) -> list[str]:
    # the "classifier" reads the class word the fake model wrote, and gets the marked rows wrong
    flip = {"pos": "neg", "neg": "pos"}
    return [flip[t.split()[-2]] if t.endswith("zzflip") else t.split()[-1] for t in texts]


def test_labeled_rows_the_classifier_disagrees_with_are_dropped() -> None:
    cfg = SyntheticConfig(n=4)
    res = run(
        cfg, labeled_gen({0, 1}), kind="labeled", seeds=LABELED_SEEDS, classify_fn=classify, protected=[]
    )
    # a round asks 1.5 x 2 = 3 per class, interleaved: pos, neg, pos, neg, pos, neg
    assert res.report["dropped"]["label_disagrees"] == 2 and res.report["complete"]
    assert res.report["labels"] == {"neg": 2, "pos": 2}
    for row in res.rows:
        assert set(row) == {"text", "label", "provenance"} and row["text"].split()[-1] == row["label"]
        assert "zzflip" not in row["text"] and not row["text"].startswith(("Text", '"'))
        assert row["provenance"]["filters"]["label"] == "pass"
    assert "| label disagreements | 2 |" in res.card_markdown() and "| pos | 2 |" in res.card_markdown()

    unchecked = run(
        SyntheticConfig(n=4, check_label=False), labeled_gen({0, 1}), kind="labeled", seeds=LABELED_SEEDS
    )
    assert "label" not in unchecked.rows[0]["provenance"]["filters"]
    assert sum("zzflip" in r["text"] for r in unchecked.rows) == 2
    with pytest.raises(ValueError, match="classify_fn"):
        run(cfg, labeled_gen(set()), kind="labeled", seeds=LABELED_SEEDS)
    with pytest.raises(ValueError, match="meh"):
        run(
            cfg,
            labeled_gen(set()),
            kind="labeled",
            seeds=LABELED_SEEDS,
            labels=["pos", "neg", "meh"],
            classify_fn=classify,
        )


def test_deterministic_for_the_same_seed() -> None:
    def gen(prompts: list[str], round_index: int) -> list[str]:
        # outputs depend on the prompts, so on which seed examples were drawn
        return [fresh(random.Random(p + str(round_index))) for p in prompts]

    a, b, c = (run(SyntheticConfig(n=6), gen, seed=s) for s in (3, 3, 4))
    assert a.rows == b.rows and a.report == b.report
    assert [r["provenance"]["seed_examples"] for r in a.rows] != [
        r["provenance"]["seed_examples"] for r in c.rows
    ]


def test_parsers_and_kind() -> None:
    assert parse_pair(
        "Sure!\n**Question:** what is up?\n**Answer:** the sky\nQuestion: again?\nAnswer: x"
    ) == (
        "what is up?",
        "the sky",
    )
    assert parse_pair("Question: a\nAnswer:   ") is None
    assert parse_text("Text: \u201ca fine film\u201d") == "a fine film"
    assert resolve_kind("auto", "sft") == resolve_kind("auto", "lm") == "instruction"
    assert resolve_kind("auto", "classification") == "labeled"


def _data_stage(tmp_path: Path, task: str, keep: list[str] | None = None) -> tuple[list[dict], RunDir]:
    src: dict = {"path": str(tmp_path / "synthetic.jsonl")} | ({"keep": keep} if keep else {})
    r = validate_recipe(
        {
            "task": task,
            "run": {"name": "s", "output_dir": str(tmp_path / "runs")},
            "data": {"sources": [src], "split": {"stratify": False}},
        }
    )
    res = run_stage("data", r)
    assert res.metrics["rows_quarantined"] == 0
    run_dir = RunDir(r.run_dir_path())
    return [
        row for s in ("train", "validation", "test") for row in read_jsonl(run_dir.data / f"{s}.jsonl")
    ], run_dir


def test_the_data_stage_reads_synthetic_chat_rows(tmp_path: Path) -> None:
    rng = random.Random(8)
    res = run(SyntheticConfig(n=20), lambda ps, r: [fresh(rng) for _ in ps])
    paths = write(res, tmp_path)
    assert json.loads(paths["report"].read_text())["kept"] == 20
    assert paths["card"].read_text().startswith("# Synthetic data card")
    out, _ = _data_stage(tmp_path, "sft")
    assert len(out) == 20 and all("provenance" not in row for row in out)  # an unlisted column is left out
    assert {question(r) for r in out} == {question(r) for r in res.rows}
    (tmp_path / "keep").mkdir()
    write(res, tmp_path / "keep")
    kept, _ = _data_stage(tmp_path / "keep", "sft", keep=["provenance"])
    assert all(row["provenance"]["model"] == "fake-lm" for row in kept)


def test_the_data_stage_reads_synthetic_labeled_rows(tmp_path: Path) -> None:
    res = run(
        SyntheticConfig(n=20),
        labeled_gen(set()),
        kind="labeled",
        seeds=LABELED_SEEDS,
        classify_fn=classify,
        protected=[],
    )
    write(res, tmp_path)
    out, run_dir = _data_stage(tmp_path, "classification", keep=["provenance"])
    assert len(out) == 20 and {r["label"] for r in out} == {"pos", "neg"}
    assert all(r["provenance"]["filters"]["label"] == "pass" for r in out)
    assert json.loads((run_dir.data / "labels.json").read_text())["labels"] == ["neg", "pos"]
