"""Row cleaning steps, registered by name and run in the order ``data.clean.steps`` gives.

A step factory takes the data config and a :class:`CleanContext` and returns a function that edits a
:class:`Record` in place and returns ``None`` to keep it or a reason to quarantine it (or returns
``None`` itself when the step is switched off). A dotted path in ``steps`` plugs in a custom factory.
"""

from __future__ import annotations

import html as html_lib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunelab.config.data import DataConfig, LabelStep
from tunelab.data.pii import PiiScrubber
from tunelab.data.records import Record, is_number
from tunelab.registry import Registry

Step = Callable[[Record], str | None]
StepFactory = Callable[[DataConfig, "CleanContext"], Step | None]
CLEAN_STEPS: Registry[StepFactory] = Registry("cleaning step")


@dataclass
class CleanContext:
    """What steps share: the task, a lazy tokenizer and figures for the report."""

    task: str
    allowed_labels: dict[int, list[str] | None]  # per source: the recipe's list or a bundled default
    tokenizer_loader: Callable[[], Any] | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    _tokenizer: Any = None

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            if self.tokenizer_loader is None:
                raise RuntimeError("no tokenizer available for a token-length filter")
            self._tokenizer = self.tokenizer_loader()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def tokenizer_loaded(self) -> bool:
        return self._tokenizer is not None


@CLEAN_STEPS.register("unicode")
def unicode_step(cfg: DataConfig, ctx: CleanContext) -> Step | None:
    if not cfg.clean.unicode.enabled:
        return None
    form = cfg.clean.unicode.form

    def step(rec: Record) -> None:
        rec.map_text(lambda t: unicodedata.normalize(form, t))

    return step


_TAG = re.compile(r"<\s*/?\s*[A-Za-z!][^>]*>|&(?:[A-Za-z]{2,8}|#\d{1,6}|#x[0-9A-Fa-f]{1,6});")
_BLOCK = ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre")


def strip_html(text: str) -> str:
    """Text without tags, scripts or styles; entities decoded. Plain text passes through untouched."""
    if not _TAG.search(text):
        return text
    if "<" not in text:
        return html_lib.unescape(text)
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for bad in soup(["script", "style", "head", "noscript"]):
        bad.decompose()
    for block in soup.find_all(_BLOCK):
        block.insert_after("\n")  # keep paragraph breaks, which get_text would glue together
    return soup.get_text()


@CLEAN_STEPS.register("html")
def html_step(cfg: DataConfig, ctx: CleanContext) -> Step | None:
    if not cfg.clean.html.enabled:
        return None
    ctx.stats["html_rows"] = 0

    def step(rec: Record) -> None:
        before = rec.content()
        rec.map_text(strip_html)
        if rec.content() != before:
            ctx.stats["html_rows"] += 1

    return step


# Control characters (except tab and newline), zero-width characters and stray BOMs.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_INDENT = re.compile(r"[ \t]*")


def clean_whitespace(text: str, keep_newlines: bool = True) -> str:
    """Drop control characters, collapse runs of spaces, and keep at most one blank line in a row.

    With ``keep_newlines`` indented lines keep their indentation, which code in answers needs.
    """
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not keep_newlines:
        return " ".join(text.split())
    out: list[str] = []
    for line in text.split("\n"):
        body = " ".join(line.split())  # str.split: fast even on a 10 MB line
        if not body:
            if out and out[-1]:
                out.append("")
            continue
        indent = _INDENT.match(line).group() if out else ""  # type: ignore[union-attr]
        # code indents by 2+ spaces or tabs; a single stray space before prose is noise
        out.append((indent if len(indent) > 1 or "\t" in indent else "") + body)
    return "\n".join(out).strip()


@CLEAN_STEPS.register("whitespace")
def whitespace_step(cfg: DataConfig, ctx: CleanContext) -> Step | None:
    if not cfg.clean.whitespace.enabled:
        return None
    keep = cfg.clean.whitespace.keep_newlines

    def step(rec: Record) -> None:
        rec.map_text(lambda t: clean_whitespace(t, keep))

    return step


@CLEAN_STEPS.register("pii")
def pii_step(cfg: DataConfig, ctx: CleanContext) -> Step | None:
    if not cfg.clean.pii.enabled:
        return None
    scrubber = PiiScrubber(cfg.clean.pii.types, max_examples=cfg.report.examples)
    ctx.stats["pii"] = scrubber
    rows = {"n": 0}
    ctx.stats["pii_rows"] = rows

    def step(rec: Record) -> None:
        before = sum(scrubber.counts.values())
        rec.map_text(scrubber)
        if sum(scrubber.counts.values()) != before:
            rows["n"] += 1

    return step


def _plain(label: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", label).split())


def label_normaliser(lc: LabelStep) -> Callable[[str], str]:
    """How the labels step writes a row's label: NFKC, single spaces, lower case (``lowercase``), then
    ``map``. With the step switched off labels are left as they are."""
    mapping = {(_plain(k).lower() if lc.lowercase else _plain(k)): _plain(v) for k, v in lc.map.items()}

    def normalise(label: str) -> str:
        if not lc.enabled:
            return label
        label = _plain(label)
        if lc.lowercase:
            label = label.lower()
        return mapping.get(label, label)

    return normalise


def allowed_normaliser(lc: LabelStep) -> Callable[[str], str]:
    """The same for a name in ``data.labels``, so ``Positive`` or ``Café`` there matches the rows.

    A name that is already a ``map`` target is kept as written (``map: {pos: Positive}`` with
    ``labels: [Positive]``); any other goes through :func:`label_normaliser`.
    """
    normalise = label_normaliser(lc)
    targets = {_plain(v) for v in lc.map.values()}

    def allowed(label: str) -> str:
        if lc.enabled and _plain(label) in targets:
            return _plain(label)
        return normalise(label)

    return allowed


@CLEAN_STEPS.register("labels")
def label_step(cfg: DataConfig, ctx: CleanContext) -> Step | None:
    """Normalise labels (NFKC, spaces, lower-case, rename) and enforce the allow-list.

    The allow-list is normalised the same way. A label set (a tuple) is normalised member by member,
    then de-duplicated and sorted again; a numeric label (a regression target) has nothing to
    normalise and no allow-list. ``ctx.stats["labels_seen"]`` counts every normalised name met.
    """
    lc = cfg.clean.labels
    to_allowed = allowed_normaliser(lc)
    allowed = {
        k: ({to_allowed(x) for x in v} if v is not None else None) for k, v in ctx.allowed_labels.items()
    }
    if ctx.task != "labelled" or (not lc.enabled and not any(allowed.values())):
        return None
    normalise = label_normaliser(lc)
    seen: Counter[str] = ctx.stats.setdefault("labels_seen", Counter())

    def step(rec: Record) -> str | None:
        if is_number(rec.label):
            return None
        if isinstance(rec.label, tuple):
            names = tuple(sorted({n for n in map(normalise, rec.label) if n}))
            if not names:
                return "empty label set"
        else:
            names = (normalise(rec.label or ""),)
            if not names[0]:
                return "empty label"
        seen.update(names)
        allowed_set = allowed.get(rec.origin)
        if allowed_set is not None:
            bad = [n for n in names if n not in allowed_set]
            if bad:
                return f"label {bad[0]!r} is not in the allowed labels {sorted(allowed_set)}"
        rec.label = names if isinstance(rec.label, tuple) else names[0]
        return None

    return step


@CLEAN_STEPS.register("length")
def length_step(cfg: DataConfig, ctx: CleanContext) -> Step | None:
    lc = cfg.clean.length
    if not lc.enabled:
        return None

    def step(rec: Record) -> str | None:
        if rec.messages is not None:
            empty = [i for i, m in enumerate(rec.messages, 1) if not m["content"]]
            if empty:
                return f"message {empty[0]} is empty after cleaning"
        n = len(rec.content())
        if n == 0:
            return "empty text after cleaning"
        if n < lc.min_chars:
            return f"{n} characters, below min_chars {lc.min_chars}"
        if n > lc.max_chars:
            return f"{n:,} characters, above max_chars {lc.max_chars:,}"
        if lc.min_tokens is not None or lc.max_tokens is not None:
            t = ctx.count_tokens(rec.content())
            if lc.min_tokens is not None and t < lc.min_tokens:
                return f"{t} tokens, below min_tokens {lc.min_tokens}"
            if lc.max_tokens is not None and t > lc.max_tokens:
                return f"{t} tokens, above max_tokens {lc.max_tokens}"
        return None

    return step


def build_steps(cfg: DataConfig, ctx: CleanContext) -> list[tuple[str, Step]]:
    """The enabled steps in recipe order; an unknown name lists the known ones."""
    steps = []
    for name in cfg.clean.steps:
        factory = CLEAN_STEPS.get(name)
        fn = factory(cfg, ctx)
        if fn is not None:
            steps.append((name.rsplit(":", 1)[-1].rsplit(".", 1)[-1], fn))
    return steps


def run_steps(
    records: list[Record], steps: list[tuple[str, Step]], reject: Callable[[str, str, str, Any], None]
) -> list[Record]:
    kept = []
    for rec in records:
        for name, fn in steps:
            why = fn(rec)
            if why:
                reject(name, why, rec.source, rec.raw)
                break
        else:
            kept.append(rec)
    return kept
