"""CSV and TSV: rows counted exactly, a runaway quoted field found at the line it opened."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from tunelab.config.data import DataConfig
from tunelab.data.errors import DataError
from tunelab.data.sources import BOM, READERS, RawRow, SourceData, _read_bytes

RUNAWAY_LINES = 50


class _Lines:
    """The file's physical lines, handed to ``csv`` one at a time so parsing can restart at any line."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0  # lines handed out so far: the 1-based number of the last one read

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _fields(line: str, delimiter: str) -> int:
    """How many fields one physical line holds when read on its own (-1 when it does not parse)."""
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return -1


def _ends_in_open_quote(body: list[str], delimiter: str) -> bool:
    try:
        for _ in csv.reader(body, delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _runaway(body: list[str], at_eof: bool, n_fields: int, delimiter: str, n_values: int) -> bool:
    """Whether a row read over several lines is really an unclosed quote that swallowed later rows.

    Signs: the quote is still open at the end of the file; or the row has the wrong number of fields
    and a line inside it is a whole row by itself; or it spans very many lines that mostly are rows.
    """
    if at_eof and _ends_in_open_quote(body, delimiter):
        return True
    inner = [_fields(line, delimiter) == n_fields for line in body[1:] if line.strip()]
    if n_values != n_fields and n_fields > 1 and any(inner):
        return True
    return len(body) > RUNAWAY_LINES and n_fields > 1 and sum(inner) > len(inner) / 2


def read_delimited(path: Path, display: str, delimiter: str, on_malformed: str = "quarantine") -> SourceData:
    """CSV/TSV with a header. An unclosed quote (which would swallow every later row into one field)
    stops with its line (``on_malformed: error``) or quarantines just that line and reads on."""
    data = _read_bytes(path, display)
    if data.startswith(BOM):
        data = data[len(BOM) :]
    # surrogateescape keeps undecodable bytes so one bad row is quarantined rather than the file refused
    text = data.decode("utf-8", errors="surrogateescape")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the default 128 KiB limit would abort on long rows
    lines = io.StringIO(text, newline="").readlines()
    src = _Lines(lines)
    reader = csv.reader(src, delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise DataError(
            f"{display}:1", f"cannot read the header: {exc}", "the first line must name the columns"
        ) from None
    if src.pos > 1:
        raise DataError(
            f"{display}:1",
            f"the header runs over {src.pos} lines: a quote opened in it is never closed",
            "close the quote on line 1 (the first line must name the columns)",
        )
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise DataError(f"{display}:1", f"repeated column names in the header {header}", "rename them")
    rows: list[RawRow] = []
    start = src.pos + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(
                f"{display}:{start}", f"cannot parse the row: {exc}", "check its quoting"
            ) from None
        where = f"{display}:{start}"
        end = src.pos
        if end > start and _runaway(
            lines[start - 1 : end], end == len(lines), len(header), delimiter, len(values)
        ):
            to = "the end of the file" if end == len(lines) else f"line {end}"
            problem = (
                f"a quote opened on line {start} is never closed: the field runs over {end - start + 1} "
                f"lines, to {to}, and would swallow the rows after it"
            )
            if on_malformed == "error":
                raise DataError(
                    where,
                    problem,
                    f'close the quote on line {start} (write a quote inside a quoted field as ""), or set '
                    "data.on_malformed: quarantine to drop only this line and read on",
                )
            line = (
                lines[start - 1].rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            )
            rows.append(RawRow(where, {"line": line}, problem + "; only this line was dropped"))
            src.pos = start  # read on from the next line, with a fresh parser
            reader = csv.reader(src, delimiter=delimiter)
            start = src.pos + 1
            continue
        start = src.pos + 1
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            rows.append(
                RawRow(
                    where,
                    {"values": values},
                    f"the row has {len(values)} fields but the header has {len(header)}",
                )
            )
            continue
        row = dict(zip(header, values, strict=True))
        bad = [k for k, v in row.items() if _has_surrogates(v)]
        if bad:
            fixed = {
                k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for k, v in row.items()
            }
            rows.append(RawRow(where, fixed, f"invalid UTF-8 bytes in column {bad[0]!r}"))
            continue
        rows.append(RawRow(where, row))
    return SourceData(display, display, rows, columns=set(header))


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@READERS.register("csv")
def read_csv(path: Path, display: str, cfg: DataConfig) -> SourceData:
    return read_delimited(path, display, ",", cfg.on_malformed)


@READERS.register("tsv")
def read_tsv(path: Path, display: str, cfg: DataConfig) -> SourceData:
    return read_delimited(path, display, "\t", cfg.on_malformed)
