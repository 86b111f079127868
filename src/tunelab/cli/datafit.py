"""What a data file says about its recipe, for ``tunelab init --data``: task, columns, labels.

The file is read with the data stage's own readers (``tunelab.data.sources``) and its labels are
normalised by the labels step's own rule, so the written recipe fits what ``tunelab data`` will see.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunelab.config.starter import Inferred, fitted_starter

SAMPLE_ROWS = 2000  # rows whose columns are looked at (labels are collected from every row)
MAX_LABELS = 200  # more distinct values than this is not a label column worth listing

# Usual names, best first (matched without regard to case)
TEXT_COLUMNS = (
    "text", "sentence", "review", "content", "comment", "document", "body", "utterance", "tweet",
    "message", "title",
)  # fmt: skip
LABEL_COLUMNS = (
    "label", "labels", "sentiment", "class", "category", "target", "intent", "tag", "tags", "topic",
    "rating", "stars", "score", "y",
)  # fmt: skip
CHAT_COLUMNS = ("messages", "conversation", "conversations", "chat", "dialog", "dialogue")
ASK_COLUMNS = ("prompt", "question", "query", "user")
ANSWER_COLUMNS = ("response", "answer", "completion", "reply", "assistant", "output")


def infer_data(path: Path) -> Inferred:
    """Read ``path`` with the data stage's readers; tell its task, column mapping and labels."""
    from tunelab.config.data import DataConfig, SourceConfig
    from tunelab.data.sources import read_source

    src = SourceConfig(path=str(path))
    data = read_source(src, DataConfig(sources=[src], on_malformed="quarantine"), seed=0)
    rows = [r.row for r in data.rows if r.problem is None and isinstance(r.row, dict)]
    if not rows:
        raise ValueError(f"{path}: no readable rows to fit a recipe to")
    names = _column_names(rows[:SAMPLE_ROWS])
    chat = _chat_columns(rows[:SAMPLE_ROWS], names)
    if chat is not None:
        return Inferred("sft", chat)
    text = _pick(names, TEXT_COLUMNS) or _longest_text(rows[:SAMPLE_ROWS], names)
    label = _pick([n for n in names if n != text], LABEL_COLUMNS) or _fewest_values(
        rows[:SAMPLE_ROWS], [n for n in names if n != text]
    )
    if text is None or label is None:
        raise ValueError(
            f"{path}: cannot tell the text and label columns (columns: {names[:12]}); "
            "run `tunelab init` without --data and set data.sources[].columns yourself"
        )
    columns = {k: v for k, v in (("text", text), ("label", label)) if k != v}
    return _labels_of([r.get(label) for r in rows], columns)


def _column_names(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(str(k) for k in r))
    return list(seen)


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    """The first of ``wanted`` among ``names`` (case-insensitive), as the file spells it."""
    by_lower = {n.lower(): n for n in reversed(names)}
    return next((by_lower[w] for w in wanted if w in by_lower), None)


def _is_chat(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def _chat_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, str] | None:
    """The sft column mapping, when the file holds chat, instruction or prompt/response rows."""
    chats = [n for n in names if any(_is_chat(r.get(n)) for r in rows[:200])]
    if chats:
        col = _pick(chats, CHAT_COLUMNS) or chats[0]
        return {} if col == "messages" else {"messages": col}
    instruction = _pick(names, ("instruction",))
    output = _pick(names, ("output", "response", "answer", "completion"))
    if instruction and output:
        extra = _pick(names, ("input", "context"))
        mapping = {"instruction": instruction, "output": output}
        if extra:
            mapping["input"] = extra
        return {k: v for k, v in mapping.items() if k != v}
    ask = _pick(names, ASK_COLUMNS)
    answer = _pick(names, ANSWER_COLUMNS)
    if ask and answer and answer.lower() != "output":  # an `output` column reads as instruction data
        return {k: v for k, v in (("prompt", ask), ("response", answer)) if k != v}
    return None


def _longest_text(rows: list[dict[str, Any]], names: list[str]) -> str | None:
    def mean_len(n: str) -> float:
        values = [r.get(n) for r in rows]
        texts = [v for v in values if isinstance(v, str)]
        return sum(map(len, texts)) / len(texts) if len(texts) * 2 >= len(values) else 0.0

    best = max(names, key=mean_len, default=None)
    return best if best is not None and mean_len(best) > 0 else None


def _fewest_values(rows: list[dict[str, Any]], names: list[str]) -> str | None:
    counts = {n: len({_hashable(r.get(n)) for r in rows if r.get(n) is not None}) for n in names}
    fit = [n for n in names if 2 <= counts[n] <= MAX_LABELS]
    return min(fit, key=lambda n: counts[n], default=None)


def _hashable(v: Any) -> Any:
    return v if isinstance(v, str | int | float | bool) else repr(v)


def _normalise(value: Any) -> str:
    """A label as the data stage keeps it: read as the task reads it, then the labels step's own
    normalisation (NFKC, single spaces, lower case) with its default settings."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return _label_step()(str(value))


@functools.cache
def _label_step() -> Callable[[str], str]:
    from tunelab.config.data import LabelStep
    from tunelab.data.clean import label_normaliser

    return label_normaliser(LabelStep())


def _labels_of(values: list[Any], columns: dict[str, str]) -> Inferred:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    present = [v for v in present if not (isinstance(v, str) and not v.strip())]
    if present and all(isinstance(v, list) for v in present):
        names = sorted({_normalise(x) for v in present for x in v} - {""})
        task = "multilabel"
    else:
        numbers = [n for n in map(_number, present) if n is not None]
        if present and len(numbers) == len(present) and any(not n.is_integer() for n in numbers):
            return Inferred("regression", columns)  # numeric targets: no label list
        names = sorted({_normalise(v) for v in present} - {""})
        task = "classification"
    if len(names) > MAX_LABELS:
        return Inferred(task, columns, None, f"{len(names)} distinct labels: too many to list")
    return Inferred(task, columns, names or None)


def _number(v: Any) -> float | None:
    """A numeric target (a CSV cell holds "0.75"), else ``None``."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            return None
        return x if math.isfinite(x) else None
    return None


def starter_for(path: Path) -> tuple[str, Inferred]:
    """A starter recipe fitted to the data file at ``path``, and what was found in it."""
    found = infer_data(path)
    return fitted_starter(str(path), found), found
