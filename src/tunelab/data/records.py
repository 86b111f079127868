"""The in-memory row that flows through the data stage, and helpers shared by the steps."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

SPLIT_PRIORITY = {"test": 3, "validation": 2, "train": 1}

# A row's label, as the task's ``parse_label`` made it: a name, a number (a regression target) or a
# sorted tuple of names (a label set). The data steps handle each shape without knowing the task.
Label = str | float | tuple[str, ...]


@dataclass(slots=True)
class Record:
    """One validated row. Either ``text`` (classification, lm) or ``messages`` (sft) carries the content."""

    source: str  # "file:line" or "file:row N": where the row came from, for quarantine and errors
    raw: Any  # the row as read, kept for quarantine.jsonl
    origin: int  # index of the source in recipe.data.sources
    text: str = ""
    label: Label | None = None
    messages: list[dict[str, str]] | None = None
    group: str | None = None
    pin: str | None = None  # a split fixed by the source (explicit validation/test files)
    extra: dict[str, Any] = field(default_factory=dict)

    def content(self) -> str:
        """All the text of the row, for length filters, dedup and statistics."""
        if self.messages is not None:
            return "\n".join(m["content"] for m in self.messages)
        return self.text

    def map_text(self, fn) -> None:
        """Apply ``fn`` to every piece of text the row carries."""
        if self.messages is not None:
            for m in self.messages:
                m["content"] = fn(m["content"])
        else:
            self.text = fn(self.text)


_WS = re.compile(r"\s+")


def normalise_key(text: str) -> str:
    """The form two texts must share to count as exact duplicates: NFKC, case-folded, single spaces."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def dedup_key(rec: Record) -> str:
    if rec.messages is not None:
        return "\x1e".join(f"{m['role']}:{normalise_key(m['content'])}" for m in rec.messages)
    return normalise_key(rec.text)


def is_number(label: Any) -> bool:
    """A numeric label (a regression target); bools are not numbers here."""
    return isinstance(label, int | float) and not isinstance(label, bool)


def label_parts(label: Any) -> tuple[str, ...]:
    """The label names a label carries: itself for a name, each member of a set, none for a number."""
    if isinstance(label, tuple):
        return label
    if isinstance(label, str):
        return (label,)
    return ()


def show_label(label: Any) -> str:
    """A label for messages and reports: ``pos``, ``[a, b]`` for a set, ``2.5`` for a number."""
    if isinstance(label, tuple):
        return "[" + ", ".join(label) + "]"
    if is_number(label):
        return f"{label:g}"
    return str(label)
