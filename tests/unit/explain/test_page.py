"""explain/index.html: every section, self-contained, escaped, robust to missing parts, small, script-free."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest
from tests.browser import open_page, require_browser

from tunelab.explain.page import SECTIONS, render_page

EVIL = '<script>alert(1)</script> & "q"'
METHODS = ["integrated_gradients", "gradient_x_input", "saliency", "occlusion", "shap", "lime", "attention"]
HEADINGS = [title for _, title in SECTIONS]


class Doc(HTMLParser):
    """Start tags with their attributes, the text of h1-h3 headings and all text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, Any]]] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.text: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.headings:
            self._open = tag
            self.headings[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open:
            self.headings[self._open][-1] += data


def parse(doc: str) -> Doc:
    p = Doc()
    p.feed(doc)
    p.close()
    return p


def _maps(rng: np.random.Generator, n_layers: int, n_heads: int, size: int) -> np.ndarray:
    """Random attention: every row a Dirichlet(1) draw (sums to 1), rounded as the explain payload is."""
    return rng.dirichlet(np.ones(size), size=(n_layers, n_heads, size))


def _rollout(maps: np.ndarray) -> np.ndarray:
    out = np.eye(maps.shape[-1])
    for layer in maps:
        a = 0.5 * np.eye(maps.shape[-1]) + 0.5 * layer.mean(axis=0)
        out = (a / a.sum(-1, keepdims=True)) @ out
    return out


def _attention(
    rng: np.random.Generator, index: int, n_layers: int, n_heads: int, size: int, full: int
) -> dict:
    maps = _maps(rng, n_layers, n_heads, size)
    return {
        "index": index,
        "tokens": ["[CLS]", *[f"w{i}" for i in range(size - 2)], "[SEP]"][:size],
        "shape": [n_layers, n_heads, full, full],
        "maps": np.round(maps, 3).tolist(),
        "rollout": np.round(_rollout(maps), 4).tolist(),
    }


def _example(rng: np.random.Generator, i: int, words: list[str], **extra: Any) -> dict:
    tokens, word_of = ["[CLS]"], [-1]
    for w, word in enumerate(words):
        parts = [word] if len(word) < 8 else [word[:4], "##" + word[4:]]
        tokens += parts
        word_of += [w] * len(parts)
    tokens.append("[SEP]")
    word_of.append(-1)
    methods = {}
    for m in METHODS:
        tok = rng.normal(size=len(tokens))
        if m in ("saliency", "attention"):
            tok = np.abs(tok)
        wd = [float(sum(tok[t] for t, wo in enumerate(word_of) if wo == w)) for w in range(len(words))]
        methods[m] = {"tokens": tok.round(4).tolist(), "words": wd, "seconds": 0.1, "info": {}}
    methods["integrated_gradients"]["info"] = {"convergence_delta": 0.003}
    faith = {
        m: {"comprehensiveness": 0.4, "sufficiency": 0.05, "by_k": [{"k": 1, "removed": 0.5, "kept": 0.9}]}
        for m in METHODS
    }
    faith["random"] = {"comprehensiveness": 0.1, "sufficiency": 0.3}
    ex = {
        "index": i,
        "source": "random",
        "row": 10 + i,
        "text": " ".join(words),
        "truncated": False,
        "tokens": tokens,
        "word_of": word_of,
        "words": words,
        "prediction": {"label": "pos", "target": 1, "probs": {"neg": 0.1, "pos": 0.9}, "gold": "pos"},
        "methods": methods,
        "faithfulness": faith,
    }
    ex.update(extra)
    return ex


def payload(seed: int = 0) -> dict:
    """2 labels, 3 examples (one truncated, one with an error, one hostile), attention for one of them."""
    rng = np.random.default_rng(seed)
    ex0 = _example(rng, 0, ["the", "unwatchable", "film", "was", "great"])
    ex1 = _example(rng, 1, ["a", "very", "long", "text"], truncated=True, source="given")
    ex1["prediction"] = {"label": "pos", "target": 1, "probs": {"neg": 0.4, "pos": 0.6}, "gold": "neg"}
    ex2 = _example(rng, 2, ["<script>alert(1)</script>", "&", '"q"', "fine"], source="misclassified")
    ex2["text"] = EVIL + " fine"
    del ex2["methods"]["shap"]
    ex2["errors"] = {"shap": "shap blew up: <b>boom</b>"}
    table = {
        m: {"comprehensiveness": 0.3 + 0.01 * k, "sufficiency": 0.1, "n_examples": 3, "beats_random": 0.67}
        for k, m in enumerate(METHODS)
    }
    table["random"] = {"comprehensiveness": 0.1, "sufficiency": 0.3, "n_examples": 3}
    agreement = [
        {"a": a, "b": b, "kendall_tau": float(rng.uniform(-1, 1)), "n": 3}
        for k, a in enumerate(METHODS)
        for b in METHODS[k + 1 :]
    ]
    top = [
        {"word": w, "mean": 0.2, "count": 3, "examples": 2, "share": 0.5, "score": 0.3}
        for w in ("great", EVIL)
    ]
    return {
        "title": "Explanations: demo <run>",
        "run": "demo",
        "model": "tuned",
        "kind": "classifier",
        "labels": ["neg", "pos"],
        "split": "test",
        "notes": [
            "1 texts were longer than max_length 128 and were explained on their first 128 tokens",
            EVIL,
        ],
        "methods": METHODS,
        "skipped": {},
        "examples": [ex0, ex1, ex2],
        "attention": {"examples": [_attention(rng, 0, 2, 2, 6, 7)]},
        "global": {
            "labels": {"neg": {"n_examples": 1, "top": top[:1]}, "pos": {"n_examples": 2, "top": top}},
            "method": "occlusion",
            "min_count": 2,
            "top_k": 15,
        },
        "rules": {
            "rules": [
                {
                    "conditions": [{"ngram": "great", "present": True}, {"ngram": EVIL, "present": False}],
                    "label": "pos",
                    "confidence": 0.93,
                    "coverage": 0.31,
                    "support": 120,
                    "heldout_accuracy": 0.95,
                }
            ],
            "fidelity": 0.9,
            "train_fidelity": 0.92,
            "majority_fidelity": 0.55,
            "n_train": 2000,
            "n_heldout": 500,
            "labels": ["neg", "pos"],
            "depth": 4,
            "n_leaves": 9,
        },
        "rules_text": f'IF "great" present THEN pos\nIF "{EVIL}" absent THEN neg',
        "layers": {
            "probe": [{"layer": i, "accuracy": 0.5 + 0.1 * i, "majority": 0.5} for i in range(3)],
            "cka": [{"layer": i, "cka": 1 - 0.1 * i} for i in range(3)],
            "logit_lens": {
                "tokens": ["The", " cat", EVIL],
                "layers": 2,
                "top": [
                    [{"ids": [5], "probs": [0.4], "tokens": [" dog"]} for _ in range(3)] for _ in range(2)
                ],
                "final_token_prob": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
                "last_layer_max_abs_diff": 1e-6,
            },
        },
        "faithfulness": {
            "methods": table,
            "agreement": agreement,
            "fractions": [0.01, 0.05, 0.1, 0.2],
            "units": "probability",
        },
        "timing": dict.fromkeys(METHODS, 0.1),
    }


def _section(doc: str, sid: str) -> str:
    m = re.search(rf"<section id='{sid}'>(.*?)</section>(?=<section id=|</body>)", doc, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def test_page_parses_and_has_every_section() -> None:
    doc = render_page(payload())
    p = parse(doc)
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    assert p.headings["h2"] == HEADINGS
    assert p.headings["h1"] == ["Explanations: demo <run>"]
    ids = {a.get("id") for _, a in p.tags}
    assert {sid for sid, _ in SECTIONS} <= ids
    assert "could not be rendered" not in doc
    assert "Not computed" not in doc
    # every example has a card with a heatmap row per method, and token-level details
    assert [x for x in p.headings["h3"] if x.startswith("Example ")][:3] == [
        "Example 0 · random · row 10",
        "Example 1 · given · row 11",
        "Example 2 · misclassified · row 12",
    ]
    assert doc.count("<details><summary>Token-level view") == 3
    assert "most faithful by comprehensiveness" in doc and "attention" in doc


def test_page_is_self_contained() -> None:
    doc = render_page(payload())
    assert "http://" not in doc and "https://" not in doc
    for bad in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert bad not in doc.lower(), bad
    for tag, attrs in parse(doc).tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed"}
        for key in ("src", "href", "xlink:href", "action"):
            v = attrs.get(key)
            assert v is None or v.startswith("#"), (tag, key, v)


def test_hostile_text_is_escaped() -> None:
    doc = render_page(payload())
    assert "alert(1)" in doc
    assert "<script" not in doc and '"q"' not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;" in doc
    assert "&lt;b&gt;boom&lt;/b&gt;" in doc  # the error message, escaped
    p = parse(doc)
    assert "script" not in {t for t, _ in p.tags} and "b" not in {
        t for t, a in p.tags if a.get("class") == "warn"
    }
    assert EVIL in "".join(p.text)  # and it reads back as the original text


def test_example_details() -> None:
    doc = render_page(payload())
    ex1, ex2 = _section(doc, "examples").split("<div class='ex'>")[2:4]
    assert "explained on the first 6 tokens" in ex1
    assert "Misclassified: gold neg, predicted pos" in ex1
    assert "failed: shap blew up" in ex2
    assert "comp 0.4 · suff 0.05 ✓" in ex2 and "convergence_delta 0.003" in doc
    spans = re.findall(r"<span( class='([pnu]\d)')? title='([^']*)'>", ex2)
    assert spans and all(re.fullmatch(r"-?[\d.e+-]+|no score", t) for _, _, t in spans)
    # signed methods use both hues, unsigned ones (saliency, attention) only the third
    row = ex2.split("<b>saliency</b>")[1].split("<div class='mrow'>")[0]
    assert re.findall(r"class='([pn])\d'", row) == [] and re.findall(r"class='u\d'", row)


def test_faithfulness_section() -> None:
    sec = _section(render_page(payload()), "faithfulness")
    assert sec.index("comprehensiveness ↑") < sec.index("<svg")  # table first, then the chart
    assert "random" in sec and "baseline" in sec and "67%" in sec
    tau = sec.split("<table class='tau'>")[1]
    assert tau.count("<tr><th>") == 1 + len(METHODS)  # header, then one row per method
    assert "background:rgba(" in sec


def test_attention_picker_is_css_only() -> None:
    doc = render_page(payload())
    sec = _section(doc, "attention")
    p = parse(sec)
    radios = [a for t, a in p.tags if t == "input"]
    assert len(radios) == 2 * (2 + 1)  # per layer: the head average and 2 heads
    assert sum("checked" in a for a in radios) == 1
    ids = {a["id"] for a in radios}
    assert {a["for"] for t, a in p.tags if t == "label"} == ids
    maps = [a["class"] for t, a in p.tags if t == "svg" and "m" in a.get("class", "").split()]
    assert sorted(maps) == sorted(f"m {k}" for k in ("l0a", "l0h0", "l0h1", "l1a", "l1h0", "l1h1"))
    for k in ("l0a", "l1h1"):
        assert f".att>input.{k}:checked~.row .{k}" in doc
    assert "attention rollout" in sec and "weight &gt;= 0.02" in sec


def test_missing_sections_say_not_computed() -> None:
    p = payload()
    for key in ("global", "rules", "layers", "faithfulness", "attention"):
        p[key] = None
    p["notes"] = ["rules not computed: fewer than 50 predictions"]
    doc = render_page(p)
    assert parse(doc).headings["h2"] == HEADINGS
    for sid in ("faithfulness", "attention", "global", "rules", "layers"):
        assert "Not computed" in _section(doc, sid), sid
    assert "Not computed: rules not computed: fewer than 50 predictions" in _section(doc, "rules")
    assert "could not be rendered" not in doc
    for bare in (
        {},
        {"examples": None, "methods": None},
        {"examples": [{}], "layers": {"logit_lens": {"x": 1}}},
    ):
        assert parse(render_page(bare)).headings["h2"] == HEADINGS


def test_causal_answer_and_odd_logit_lens() -> None:
    p = payload()
    ex = p["examples"][0]
    del ex["prediction"]
    ex["answer"] = {"text": "Paris <b>", "tokens": ["Par", "is"], "logprob": -1.5, "source": "given"}
    ex["per_answer_token"] = [
        [0.1, -0.2, 0.0, 0.3, 0.5, 0.1, 0.2, 0.0],
        [0.2, 0.1, -0.5, 0.0, 0.1, 0.0, 0.1, 0.3],
    ]
    p.update(kind="causal", labels=[])
    p["faithfulness"]["units"] = "log-probability (nats)"
    p["layers"]["logit_lens"] = {"input_tokens": ["a", "b"], "top": [[{"ids": [7]}, "junk"], None, [{}]]}
    doc = render_page(p)
    assert "could not be rendered" not in doc
    assert "Paris &lt;b&gt;" in doc and "log-probability -1.5" in doc
    assert "score per answer token" in doc and "<title>Par ← [CLS]: 0.1</title>" in doc
    assert "id 7" in _section(doc, "layers")
    p["layers"]["logit_lens"] = ["not", "a", "dict"]
    assert "could not be rendered" not in render_page(p)


def minilm_payload() -> dict:
    """12 examples of 60 tokens, 3 attention examples of 6 layers x 12 heads x 40 x 40 (MiniLM-sized)."""
    rng = np.random.default_rng(1)
    p = payload()
    words = [f"word{i % 7}" if i % 9 else f"longerword{i}" for i in range(52)]  # 52 words -> 60 tokens
    p["examples"] = [_example(rng, i, words) for i in range(12)]
    assert len(p["examples"][0]["tokens"]) == 60
    p["attention"] = {"examples": [_attention(rng, i, 6, 12, 40, 60) for i in range(3)]}
    return p


def test_minilm_sized_page_is_small() -> None:
    p = minilm_payload()
    start = time.perf_counter()
    doc = render_page(p)
    seconds = time.perf_counter() - start
    size = len(doc.encode("utf-8"))
    att = len(_section(doc, "attention").encode("utf-8"))
    print(
        f"MiniLM-sized page: {size / 1e6:.2f} MB ({att / 1e6:.2f} MB attention), rendered in {seconds:.2f} s"
    )
    assert size < 3_000_000
    assert doc.count("<input type='radio'") == 3 * 6 * 13


@pytest.mark.browser
def test_page_in_headless_chromium(tmp_path) -> None:
    require_browser()
    p = payload()
    path = tmp_path / "index.html"
    path.write_text(render_page(p), encoding="utf-8")
    with open_page(path) as visit:
        page = visit.page
        assert visit.title == p["title"]
        for title in HEADINGS:
            assert page.get_by_role("heading", name=title, level=2, exact=True).is_visible(), title
        assert page.get_by_text("explained on the first 6 tokens").is_visible()
        picker = page.locator(".att").first
        default, head = picker.locator(".amap svg.l1a"), picker.locator(".amap svg.l0h1")
        assert default.is_visible() and not head.is_visible()
        picker.locator("label[for='att0-l0h1']").click()
        assert head.is_visible() and not default.is_visible()
        picker.locator("label[for='att0-l1a']").click()
        assert default.is_visible() and not head.is_visible()
        assert visit.console_errors == []
        assert visit.requests == []


def test_truncation_note_says_which_end_was_cut_and_chat_turns_are_shown() -> None:
    p = payload()
    ex = p["examples"][1]
    ex.update(cut="end", n_prompt=6)
    assert "the end of the text was cut; explained on the first 6 tokens" in render_page(p)
    del ex["prediction"]
    ex.update(cut="start", n_prompt=4)  # a causal prompt: its start is cut, the answer follows its end
    ex["answer"] = {"text": "yes", "tokens": ["yes", "."], "logprob": -1.0, "source": "given"}
    ex["conversation"] = [
        {"role": "system", "content": "be <brief>"},
        {"role": "user", "content": ex["text"]},
    ]
    ex["turn"] = 1
    doc = render_page(p)
    assert "the start of the prompt was cut; explained on its last 4 tokens" in doc
    assert "first 4 tokens" not in doc and "first 6 tokens" not in doc
    assert "1 other turn(s) of the conversation" in doc and "<b>system</b>: be &lt;brief&gt;" in doc
    assert "could not be rendered" not in doc
