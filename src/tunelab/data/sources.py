"""Read rows from files, folders, bundled datasets and the hub into plain dicts with their location.

Readers never raise a raw library error: a problem with one row becomes a :class:`RawRow` with a
``problem`` (it goes to quarantine); a problem with the whole file raises :class:`DataError`.
"""

from __future__ import annotations

import bz2
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.config.data import DataConfig, SourceConfig
from tunelab.data.errors import DataError
from tunelab.registry import Registry
from tunelab.runs import file_sha256

BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawRow:
    """A row as read: a mapping of column -> value, or the reason it could not be read."""

    where: str
    row: dict[str, Any] | None
    problem: str | None = None


@dataclass
class SourceData:
    """Everything read from one source."""

    name: str
    display: str  # how locations are written: a path, or package-relative for bundled data
    rows: list[RawRow]
    columns: set[str] | None = None  # the header, for formats that have one
    default_columns: dict[str, str] = field(default_factory=dict)
    default_labels: list[str] | None = None
    keep: list[str] = field(default_factory=list)
    available: int = 0  # rows before the max_rows cap
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> files (text folders)
    hidden: int = 0  # hidden files and folders ignored (text folders)


Reader = Callable[[Path, str, DataConfig], SourceData]
READERS: Registry[Reader] = Registry("data format")


def _display(path: Path) -> str:
    # The path as the recipe gave it: the form the user recognises in errors and quarantine rows.
    return str(path)


def expand(path: str) -> Path:
    """``~`` and ``~user`` expanded; an unknown user is a DataError, not a RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise DataError(
            path, "cannot expand '~': no such user's home directory", "give the full path"
        ) from None


def _read_bytes(path: Path, display: str) -> bytes:
    if not path.exists():
        raise DataError(
            display,
            "file not found",
            "check data.sources[].path; relative paths start at the working directory",
        )
    if path.is_dir():
        raise DataError(display, "is a folder", "give a file, or set format: text_folder / hf_disk")
    data = path.read_bytes()
    if path.suffix == ".bz2":
        try:
            data = bz2.decompress(data)
        except (OSError, EOFError, ValueError) as exc:  # not bz2, or cut short
            raise DataError(
                display, f"cannot decompress the .bz2 file: {exc}", "re-compress it, or drop the .bz2 ending"
            ) from None
    if not data.strip(b" \t\r\n" + BOM):
        raise DataError(f"{display}:1", "the file is empty", "remove it from data.sources or add rows")
    return data


@READERS.register("jsonl")
def read_jsonl(path: Path, display: str, cfg: DataConfig) -> SourceData:
    """One JSON object per line; a ``.json`` file holding one array of objects is read too."""
    data = _read_bytes(path, display)
    if data.lstrip(BOM + b" \t\r\n").startswith(b"["):
        return _read_json_array(data, display)
    rows: list[RawRow] = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if lineno == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        if not line.strip():
            continue  # blank lines are not rows
        where = f"{display}:{lineno}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            rows.append(
                RawRow(where, {"line": line}, f"invalid UTF-8 byte at position {exc.start} of the line")
            )
            continue
        try:
            obj = json.loads(text)
        except (RecursionError, ValueError) as exc:  # nested too deep, or an integer of 5000 digits
            if not isinstance(exc, json.JSONDecodeError):
                why = "the line is nested too deeply to read" if isinstance(exc, RecursionError) else str(exc)
                if cfg.on_malformed == "error":
                    raise DataError(
                        where, why, "fix or delete the line, or set data.on_malformed: quarantine"
                    ) from None
                rows.append(RawRow(where, {"line": text[:1000]}, why))
                continue
            if cfg.on_malformed == "error":
                looks = " (it looks like CSV: set format: csv)" if lineno == 1 and "," in text else ""
                raise DataError(
                    f"{where}",
                    f"not valid JSON at column {exc.colno}: {exc.msg}{looks}",
                    "fix or delete the line, or set data.on_malformed: quarantine",
                ) from None
            rows.append(RawRow(where, {"line": text}, f"not valid JSON at column {exc.colno}: {exc.msg}"))
            continue
        if not isinstance(obj, dict):
            rows.append(
                RawRow(where, {"value": obj}, f"the line is a JSON {type(obj).__name__}, not an object")
            )
            continue
        rows.append(RawRow(where, obj))
    return SourceData(display, display, rows)


def _read_json_array(data: bytes, display: str) -> SourceData:
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except RecursionError:
        raise DataError(
            display, "the JSON is nested too deeply to read", "write one object per line (JSONL)"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(display, f"invalid UTF-8 at byte {exc.start}", "re-save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{display}:{exc.lineno}",
            f"not valid JSON at column {exc.colno}: {exc.msg}",
            "fix the file, or write one object per line (JSONL)",
        ) from None
    rows = [
        RawRow(f"{display}:row {i}", x)
        if isinstance(x, dict)
        else RawRow(f"{display}:row {i}", {"value": x}, f"item is a JSON {type(x).__name__}, not an object")
        for i, x in enumerate(items, 1)
    ]
    return SourceData(display, display, rows)


# A quoted field over this many lines whose lines mostly look like rows of their own is a runaway quote.
@READERS.register("parquet")
def read_parquet(path: Path, display: str, cfg: DataConfig) -> SourceData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(display, "file not found", "check data.sources[].path")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            display, f"not a readable Parquet file: {exc}", "set format: to the real format"
        ) from None
    if table.num_rows == 0:
        raise DataError(display, "the file is empty (0 rows)", "remove it from data.sources or add rows")
    rows = [RawRow(f"{display}:row {i}", r) for i, r in enumerate(table.to_pylist(), 1)]
    return SourceData(display, display, rows, columns=set(table.column_names))


def _rows_from_dataset(ds: Any, display: str, split: str) -> SourceData:
    from datasets import DatasetDict

    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise DataError(display, f"no split {split!r}; it has {sorted(ds)}", "set hub_split")
        ds = ds[split]
    rows = [RawRow(f"{display}[{split}]:row {i}", r) for i, r in enumerate(ds.to_list(), 1)]
    if not rows:
        raise DataError(display, f"split {split!r} is empty", "pick another hub_split")
    return SourceData(display, display, rows, columns=set(ds.column_names))


@READERS.register("hf_disk")
def read_hf_disk(path: Path, display: str, cfg: DataConfig, split: str = "train") -> SourceData:
    from datasets import load_from_disk

    if not path.is_dir():
        raise DataError(display, "folder not found", "give a folder written by Dataset.save_to_disk")
    try:
        ds = load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(
            display, f"not a saved datasets folder: {exc}", "write it with save_to_disk"
        ) from None
    return _rows_from_dataset(ds, display, split)


def read_hub(src: SourceConfig) -> SourceData:
    """A hub dataset; needs network (or the local HF cache). Not exercised by the offline tests."""
    from datasets import load_dataset

    display = f"hub:{src.hub}"
    try:
        ds = load_dataset(src.hub, src.subset, split=src.hub_split)
    except Exception as exc:  # the hub client raises many unrelated types; all mean "cannot load"
        raise DataError(
            display,
            f"cannot load the hub dataset: {type(exc).__name__}: {exc}",
            "check the name and network, or download it and use path:",
        ) from None
    data = _rows_from_dataset(ds, display, src.hub_split)
    return data


def infer_format(path: Path) -> str:
    if path.is_dir():
        if (
            (path / "dataset_info.json").exists()
            or (path / "dataset_dict.json").exists()
            or (path / "state.json").exists()
        ):
            return "hf_disk"
        return "text_folder"
    name = path.name.lower().removesuffix(".bz2")
    for ext, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(ext):
            return fmt
    raise DataError(
        _display(path),
        f"cannot tell the format from the extension {path.suffix!r}",
        f"set format: one of {READERS.names()}",
    )


def read_source(src: SourceConfig, cfg: DataConfig, seed: int) -> SourceData:
    """Read one source, apply its ``max_rows`` cap (a seeded sample) and hash its files."""
    if src.bundled:
        from tunelab.data.bundled import BUNDLED  # bundled readers build on this module's readers

        data = BUNDLED[src.bundled]()
    elif src.hub:
        data = read_hub(src)
    else:
        assert src.path is not None
        path = expand(src.path)
        display = _display(path)
        if not path.exists():
            raise DataError(
                display,
                "file not found",
                "check data.sources[].path; relative paths start at the working directory",
            )
        fmt = src.format or infer_format(path)
        reader = READERS.get(fmt)
        data = reader(path, display, cfg, src.hub_split) if fmt == "hf_disk" else reader(path, display, cfg)
    data.name = src.display_name()
    data.available = len(data.rows)
    if src.max_rows is not None and len(data.rows) > src.max_rows:
        picked = sorted(random.Random(seed).sample(range(len(data.rows)), src.max_rows))
        data.rows = [data.rows[i] for i in picked]
    return data


def input_hashes(cfg: DataConfig) -> dict[str, str]:
    """Hashes of every input file, without parsing them (for the skip-if-unchanged fingerprint)."""
    from tunelab.data.bundled import bundled_files

    out: dict[str, str] = {}
    for src in cfg.sources:
        if src.bundled:
            out.update({str(f): file_sha256(f) for f in bundled_files(src.bundled)})
        elif src.hub:
            out[f"hub:{src.hub}"] = f"{src.subset}/{src.hub_split}"  # the hub keeps its own versions
        else:
            p = expand(str(src.path))
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            out.update({str(f): file_sha256(f) if f.is_file() else "missing" for f in files})
    return out


# Readers in modules of their own register themselves (they import this module's types).
from tunelab.data import delimited, text_folder  # noqa: E402, F401
