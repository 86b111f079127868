"""Turn a read row into a :class:`Record` of the task's shape, validating it field by field.

Formats: classification (text + label), instruction (instruction / input / output), prompt/response
pairs and chat (a list of role/content messages) for ``sft``, and plain text for ``lm``. A row that
does not fit gets a reason (it goes to quarantine); a column that no row has at all is a
:class:`DataError`, since that is a mapping mistake rather than a bad row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tunelab.config.data import SourceConfig
from tunelab.data.errors import DataError
from tunelab.data.records import Record
from tunelab.data.sources import SourceData
from tunelab.registry import Registry

ROLES = ("system", "user", "assistant")

Converter = Callable[["Mapper", dict[str, Any], Record], str | None]
FORMATS: Registry[Converter] = Registry("row format")


class Mapper:
    """Reads our fields from a row through the source's column mapping."""

    def __init__(
        self, columns: dict[str, str], parse_label: Callable[[Any], tuple[Any, str | None]] | None = None
    ) -> None:
        self.columns = columns
        self.parse_label = parse_label or (lambda v: (v, None))  # the task reads its labels

    def col(self, name: str) -> str:
        return self.columns.get(name, name)

    def has(self, row: dict[str, Any], name: str) -> bool:
        return _present(row.get(self.col(name)))

    def get(self, row: dict[str, Any], name: str) -> Any:
        return row.get(self.col(name))


def _present(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and math.isnan(v):  # pandas/parquet missing value
        return False
    return not (isinstance(v, str) and not v.strip())


def _as_text(v: Any, what: str) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason)."""
    if not _present(v):
        return None, f"missing {what}"
    if not isinstance(v, str):
        return None, f"{what} must be a string, got {type(v).__name__} {str(v)[:40]!r}"
    return v, None


@FORMATS.register("labelled")
def labelled(m: Mapper, row: dict[str, Any], rec: Record) -> str | None:
    if not m.has(row, "text") and m.has(row, "messages"):
        return (
            "row looks like chat data ('messages') but this task needs text and label; "
            "for chat data set task: sft"
        )
    text, why = _as_text(m.get(row, "text"), f"text (column {m.col('text')!r})")
    if why:
        return why
    if not _present(m.get(row, "label")):
        return f"missing label (column {m.col('label')!r})"
    label, why = m.parse_label(m.get(row, "label"))
    if why:
        return f"{why} (column {m.col('label')!r})"
    rec.text, rec.label = text or "", label
    return None


@FORMATS.register("text")
def plain_text(m: Mapper, row: dict[str, Any], rec: Record) -> str | None:
    text, why = _as_text(m.get(row, "text"), f"text (column {m.col('text')!r})")
    if why:
        return why
    rec.text = text or ""
    return None


def _chat(m: Mapper, row: dict[str, Any], rec: Record) -> str | None:
    msgs = m.get(row, "messages")
    if not isinstance(msgs, list) or not msgs:
        return f"messages must be a non-empty list of {{role, content}}, got {type(msgs).__name__}"
    out = []
    for i, msg in enumerate(msgs, 1):
        if not isinstance(msg, dict):
            return f"message {i} must be an object with role and content, got {type(msg).__name__}"
        role = msg.get("role")
        if role not in ROLES:
            return f"message {i} has role {role!r}; expected one of {list(ROLES)}"
        content, why = _as_text(msg.get("content"), f"content in message {i}")
        if why:
            return why
        if role == "system" and i != 1:
            return f"message {i} is a system message; only the first message may be one"
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant":
        return f"the last message has role {out[-1]['role']!r}; it must be the assistant's answer"
    if not any(x["role"] == "user" for x in out):
        return "the conversation has no user message"
    rec.messages = out
    return None


def _pair(
    m: Mapper, row: dict[str, Any], rec: Record, ask: str, answer: str, extra: str | None
) -> str | None:
    prompt, why = _as_text(m.get(row, ask), f"{ask} (column {m.col(ask)!r})")
    if why:
        return why
    reply, why = _as_text(m.get(row, answer), f"{answer} (column {m.col(answer)!r})")
    if why:
        return why
    user = prompt or ""
    if extra and m.has(row, extra):
        more, why = _as_text(m.get(row, extra), f"{extra} (column {m.col(extra)!r})")
        if why:
            return why
        user = f"{user}\n\n{more}"
    msgs = []
    if m.has(row, "system"):
        system, why = _as_text(m.get(row, "system"), "system")
        if why:
            return why
        msgs.append({"role": "system", "content": system or ""})
    rec.messages = [*msgs, {"role": "user", "content": user}, {"role": "assistant", "content": reply or ""}]
    return None


@FORMATS.register("chat")
def chat(m: Mapper, row: dict[str, Any], rec: Record) -> str | None:
    """Chat rows, instruction rows and prompt/response pairs all become messages."""
    if m.col("messages") in row:
        return _chat(m, row, rec)
    if m.col("instruction") in row or m.col("output") in row:
        return _pair(m, row, rec, "instruction", "output", "input")
    if m.col("prompt") in row or m.col("response") in row:
        return _pair(m, row, rec, "prompt", "response", None)
    if m.col("text") in row:
        return "plain-text row; sft needs messages, instruction/output or prompt/response"
    return f"no messages, instruction/output or prompt/response columns (row has {sorted(row)[:8]})"


REQUIRED = {
    "labelled": [("text",), ("label",)],
    "text": [("text",)],
    "chat": [("messages", "instruction", "prompt")],
}


def check_columns(data: SourceData, mapper: Mapper, task: str) -> None:
    """Refuse a source where no row has a required column: that is a mapping mistake, not a bad row."""
    for options in REQUIRED.get(task, []):
        cols = [mapper.col(o) for o in options]
        if data.columns is not None:
            found = any(c in data.columns for c in cols)
            seen = sorted(data.columns)
        else:
            readable = [r.row for r in data.rows if r.problem is None and r.row is not None]
            if not readable:
                return  # every row is already quarantined with its own reason
            found = any(c in row for row in readable for c in cols)
            seen = sorted({k for row in readable[:50] for k in row})
        if not found:
            want = " or ".join(repr(c) for c in cols)
            looks = ""
            if data.columns and any(c.lstrip().startswith(("{", "[")) for c in data.columns):
                looks = "; the header looks like JSON: set format: jsonl"
            elif task == "labelled" and mapper.col("messages") in seen:
                looks = "; the rows look like chat data (messages): for chat data set task: sft"
            elif task == "chat" and mapper.col("text") in seen and mapper.col("label") in seen:
                looks = "; the rows look like text + label data: for it set task: classification"
            raise DataError(
                f"{data.display}:1",
                f"no column {want} (columns: {seen[:12]}){looks}",
                f"map it in the recipe, e.g. columns: {{{options[0]}: <your column>}}",
            )


def to_records(
    data: SourceData,
    src: SourceConfig,
    origin: int,
    task: str,
    group_by: str | None,
    reject: Callable[[str, str, str, Any], None],
    parse_label: Callable[[Any], tuple[Any, str | None]] | None = None,
) -> list[Record]:
    """Validate and convert every row of one source (``task``: its row format); rejects go to ``reject``."""
    mapper = Mapper({**data.default_columns, **src.columns}, parse_label)
    check_columns(data, mapper, task)
    convert = FORMATS.get(task)
    keep = src.keep if src.keep is not None else data.keep
    out = []
    for raw in data.rows:
        if raw.problem is not None or raw.row is None:
            reject("read", raw.problem or "unreadable row", raw.where, raw.row)
            continue
        rec = Record(source=raw.where, raw=raw.row, origin=origin, pin=src.split)
        why = convert(mapper, raw.row, rec)
        if why:
            reject("format", why, raw.where, raw.row)
            continue
        if group_by:
            g = raw.row.get(group_by) if group_by in raw.row else mapper.get(raw.row, "group")
            rec.group = str(g) if _present(g) else None
        rec.extra = {k: raw.row[k] for k in keep if k in raw.row}
        out.append(rec)
    return out
