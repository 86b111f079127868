"""Cleaning steps: unicode, HTML, whitespace and control characters, labels, lengths, registry."""

from __future__ import annotations

import pytest

from tunelab.config.data import DataConfig
from tunelab.data.clean import CLEAN_STEPS, CleanContext, build_steps, clean_whitespace, run_steps, strip_html
from tunelab.data.records import Record
from tunelab.registry import UnknownPluginError


def cfg(**clean) -> DataConfig:
    return DataConfig(sources=[{"path": "x.jsonl"}], clean=clean)


def ctx(task: str = "labelled", allowed: list[str] | None = None, loader=None) -> CleanContext:
    return CleanContext(task=task, allowed_labels={0: allowed}, tokenizer_loader=loader)


def rec(text: str, label: str | None = "pos") -> Record:
    return Record(source="f:1", raw={"text": text}, origin=0, text=text, label=label)


def clean(records: list[Record], c: DataConfig, cx: CleanContext) -> tuple[list[Record], list[tuple]]:
    dropped: list[tuple] = []
    kept = run_steps(records, build_steps(c, cx), lambda *a: dropped.append(a))
    return kept, dropped


def test_html() -> None:
    assert strip_html("plain & simple <3") == "plain & simple <3"
    assert strip_html("Tom &amp; Jerry") == "Tom & Jerry"
    out = strip_html("<html><head><style>p{}</style></head><p>One</p><p>Two<script>x()</script></p></html>")
    assert "One" in out and "Two" in out and "x()" not in out and "p{}" not in out and "\n" in out


def test_whitespace_and_control_characters() -> None:
    assert clean_whitespace("  a\t\tb\u200b c\x07 \r\n\r\n\r\n d  ") == "a b c\n\nd"
    assert clean_whitespace("a\n\nb", keep_newlines=False) == "a b"
    code = "Here:\n\n\n\ndef f(x):\n    if x:   # note\n\treturn 1\n   \n"
    assert clean_whitespace(code) == "Here:\n\ndef f(x):\n    if x: # note\n\treturn 1"


def test_unicode_form() -> None:
    r = rec("ﬁlm ＡＢＣ café")
    kept, _ = clean([r], cfg(), ctx())
    assert kept[0].text == "film ABC café"
    r = rec("ﬁlm")
    kept, _ = clean([r], cfg(unicode={"form": "NFC"}), ctx())
    assert kept[0].text == "ﬁlm"


def test_labels_normalised_mapped_and_allowed() -> None:
    rows = [rec("a", " Positive "), rec("b", "NEG"), rec("c", "meh"), rec("d", "  ")]
    kept, dropped = clean(rows, cfg(labels={"map": {"positive": "pos"}}), ctx(allowed=["pos", "neg"]))
    assert [r.label for r in kept] == ["pos", "neg"]
    assert [(d[0], d[1]) for d in dropped] == [
        ("labels", "label 'meh' is not in the allowed labels ['neg', 'pos']"),
        ("labels", "empty label"),
    ]


def test_switching_a_step_off() -> None:
    kept, _ = clean([rec("<b>x</b>")], cfg(html={"enabled": False}), ctx())
    assert kept[0].text == "<b>x</b>"
    kept, _ = clean([rec("<b>x</b>")], cfg(steps=["unicode", "whitespace"]), ctx())
    assert kept[0].text == "<b>x</b>"


class FakeTokenizer:
    calls = 0

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        FakeTokenizer.calls += 1
        return {"input_ids": text.split()}


def test_token_lengths_load_the_tokenizer_lazily() -> None:
    loads = []

    def loader():
        loads.append(1)
        return FakeTokenizer()

    rows = [rec("one two"), rec("one two three four five six"), rec("one")]
    kept, dropped = clean(rows, cfg(length={"min_tokens": 2, "max_tokens": 5}), ctx(loader=loader))
    assert [r.text for r in kept] == ["one two"]
    assert [d[1] for d in dropped] == ["6 tokens, above max_tokens 5", "1 tokens, below min_tokens 2"]
    assert loads == [1]
    loads.clear()
    clean(rows, cfg(), ctx(loader=loader))
    assert loads == []  # no token limits: the tokenizer is never loaded


def test_char_lengths_and_empty_messages() -> None:
    rows = [rec("abc"), rec("a" * 50), rec("")]
    kept, dropped = clean(rows, cfg(length={"min_chars": 2, "max_chars": 10}), ctx())
    assert [r.text for r in kept] == ["abc"]
    assert [d[1] for d in dropped] == ["50 characters, above max_chars 10", "empty text after cleaning"]
    chat = Record(
        source="f:2",
        raw={},
        origin=0,
        messages=[{"role": "user", "content": "<p></p>"}, {"role": "assistant", "content": "ok"}],
    )
    _, dropped = clean([chat], cfg(), ctx("sft"))
    assert dropped[0][1] == "message 1 is empty after cleaning"


def shout(cfg: DataConfig, ctx: CleanContext):
    def step(r: Record) -> str | None:
        if "forbidden" in r.content():
            return "contains a forbidden word"
        r.map_text(str.upper)
        return None

    return step


def test_custom_step_by_dotted_path_and_unknown_names() -> None:
    kept, dropped = clean(
        [rec("hello"), rec("forbidden fruit")], cfg(steps=["whitespace", f"{__name__}:shout"]), ctx()
    )
    assert kept[0].text == "HELLO" and dropped[0][:2] == ("shout", "contains a forbidden word")
    with pytest.raises(UnknownPluginError, match="known: html, labels, length, pii, unicode, whitespace"):
        build_steps(cfg(steps=["nope"]), ctx())
    assert "pii" in CLEAN_STEPS
