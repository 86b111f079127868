"""The decoding sweep: grid, orchestration with fakes, Pareto front, target choice, SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tunelab.generate.config import DecodingConfig, SweepConfig
from tunelab.generate.sweep import choose_for_target, grid, label, pareto_front, run_sweep, sweep_svg

# (temperature, top_p, distinct_2, perplexity, self_bleu); lower perplexity is better.
TABLE = [
    (0.3, 0.9, 0.20, 5.0, 0.80),  # 0: least diverse, best quality -> front
    (0.7, 0.9, 0.40, 6.0, 0.55),  # 1: front
    (0.7, 1.0, 0.35, 7.0, 0.60),  # 2: dominated by 1 (less diverse, worse)
    (1.0, 0.9, 0.60, 9.0, 0.30),  # 3: front
    (1.0, 1.0, 0.55, 12.0, 0.35),  # 4: dominated by 3
    (1.2, 1.0, 0.75, 20.0, 0.20),  # 5: most diverse -> front
]


def rows() -> list[dict]:
    return [
        {"temperature": t, "top_p": p, "distinct_2": d, "perplexity": q, "self_bleu": b}
        for t, p, d, q, b in TABLE
    ]


def test_grid_has_every_combination():
    g = grid(SweepConfig(temperatures=[0.3, 0.7, 1.0], top_ps=[0.9, 1.0]))
    assert len(g) == 6
    assert {"temperature": 0.7, "top_p": 1.0} in g
    g3 = grid(SweepConfig(temperatures=[0.5, 1.0], top_ps=[0.9, 1.0], min_ps=[0.0, 0.05, 0.1]))
    assert len(g3) == 12 and all(set(s) == {"temperature", "top_p", "min_p"} for s in g3)
    assert len({json.dumps(s, sort_keys=True) for s in g3}) == 12
    for s in g3:  # every setting is a valid decoding override
        DecodingConfig(**s)


def test_grid_has_one_greedy_setting():
    g = grid(SweepConfig(temperatures=[0.0, 1.0], top_ps=[0.9, 1.0]))
    assert g == [
        {"temperature": 0.0, "top_p": None},
        {"temperature": 1.0, "top_p": 0.9},
        {"temperature": 1.0, "top_p": 1.0},
    ]
    assert label(g[0]) == "T0 greedy" and label(g[1]) == "T1 p0.9"


def test_run_sweep_orchestrates_and_rows_are_jsonable():
    seen = []

    def gen(overrides):
        seen.append(overrides)
        return [["a"] * 2, ["b"] * 2]

    def score(groups):
        return {"distinct_2": np.float32(0.5), "perplexity": np.float64(3.0), "n": np.int64(len(groups))}

    settings = grid(SweepConfig(temperatures=[0.7, 1.0], top_ps=[0.9]))
    out = run_sweep(gen, score, settings)
    assert seen == settings
    assert out[1] == {"temperature": 1.0, "top_p": 0.9, "distinct_2": 0.5, "perplexity": 3.0, "n": 2}
    assert type(out[0]["distinct_2"]) is float and type(out[0]["n"]) is int
    json.dumps(out, allow_nan=False)
    with pytest.raises(ValueError, match="temperature"):
        run_sweep(gen, lambda g: {"temperature": 1.0}, settings)


def test_pareto_front_on_hand_made_rows():
    assert pareto_front(rows()) == [0, 1, 3, 5]
    # self_bleu is lower-is-more-diverse: the same ranking, so the same front
    assert pareto_front(rows(), diversity_key="self_bleu") == [0, 1, 3, 5]
    # quality where higher is better (treat perplexity as a score): the most diverse row then wins both
    assert pareto_front(rows(), quality_higher_is_better=True) == [5]
    with_missing = [*rows(), {"temperature": 2.0, "top_p": 1.0, "distinct_2": None, "perplexity": 1.0}]
    assert pareto_front(with_missing) == [0, 1, 3, 5]
    tie = [{"distinct_2": 0.5, "perplexity": 2.0}, {"distinct_2": 0.5, "perplexity": 2.0}]
    assert pareto_front(tie) == [0, 1]


def test_choose_for_target_picks_the_best_quality_row_meeting_it():
    got = choose_for_target(rows(), {"distinct_2": 0.5})
    assert got["chosen"] == 3  # rows 3, 4, 5 meet it; 3 has the lowest perplexity
    assert got["settings"] == {"temperature": 1.0, "top_p": 0.9}
    assert "3 of 6" in got["reason"] and "T1 p0.9" in got["reason"] and "perplexity" in got["reason"]
    # two targets, one lower-is-more-diverse: self_bleu <= 0.25 leaves row 5 only
    both = choose_for_target(rows(), {"distinct_2": 0.5, "self_bleu": 0.25})
    assert both["chosen"] == 5 and "self_bleu <= 0.25" in both["reason"]
    # with higher-is-better quality the most "perplex" row meeting the target wins
    assert choose_for_target(rows(), {"distinct_2": 0.5}, quality_higher_is_better=True)["chosen"] == 5


def test_choose_for_target_says_when_none_meets_it():
    got = choose_for_target(rows(), {"distinct_2": 0.9})
    assert got["chosen"] is None and got["settings"] is None
    assert got["closest"] == 5
    assert "No setting" in got["reason"] and "T1.2 p1" in got["reason"] and "0.75" in got["reason"]
    assert choose_for_target([], {"distinct_2": 0.5})["chosen"] is None


def test_svg_parses_and_shows_every_label_and_the_front():
    r = rows()
    r.append({"temperature": 1.5, "top_p": 0.95, "distinct_2": 0.7, "perplexity": 30.0})  # dominated by 5
    front = pareto_front(r)
    svg = sweep_svg(r, front, "distinct_2", "perplexity", chosen=3, title="sweep <A & B>")
    root = ET.fromstring(svg)  # parses: the title's markup characters are escaped
    ns = "{http://www.w3.org/2000/svg}"
    texts = ["".join(t.itertext()) for t in root.iter(f"{ns}text")]
    for row in r:
        assert label(row) in texts
    assert "sweep <A & B>" in texts
    assert any("distinct_2" in t for t in texts) and any("perplexity" in t for t in texts)
    fronts = [c for c in root.iter(f"{ns}circle") if c.get("class") == "front"]
    assert len(fronts) == len(front) == 4
    line = root.find(f"{ns}polyline[@class='pareto-front']")
    assert line is not None and len(line.get("points").split()) == 4
    assert root.find(f"{ns}circle[@class='chosen']") is not None
    empty = ET.fromstring(sweep_svg([{"temperature": 1.0}], [], "distinct_2", "perplexity"))
    assert "no setting" in "".join(empty.itertext())
