"""A quick look at the first rows of each data source, without running the data stage.

Small files go through the data stage's own readers (``tunelab.data.sources.READERS``), so what is
refused here is what the data stage would refuse; larger files are read for their first
:data:`SCAN_ROWS` rows only. A text folder is judged by its ``<label>/`` folder names.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tunelab.config.data import DataConfig, SourceConfig
from tunelab.data.errors import DataError
from tunelab.data.sources import BOM, READERS, infer_format

SCAN_ROWS = 2000  # rows read from the head of a large file
WHOLE_FILE_BYTES = 8 * 2**20  # files up to this size are read whole, by the data stage's readers
HF_DISK_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


class ScanProblem(Exception):
    """A source that the data stage would refuse; ``field`` is the source key to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Scan:
    """The rows read from one source (all of them when ``complete``)."""

    display: str
    rows: list[dict[str, Any]]
    columns: set[str] | None = None  # the header, where the format has one
    complete: bool = True
    default_columns: dict[str, str] = field(default_factory=dict)
    default_labels: list[str] | None = None
    what: str = ""  # how much was read, for messages ("the first 2000 rows")

    def has_column(self, column: str) -> bool | None:
        """Whether any row has ``column``; None when nothing readable was seen."""
        if self.columns is not None:
            return column in self.columns
        if not self.rows:
            return None
        return any(column in row for row in self.rows)

    def seen_columns(self) -> list[str]:
        if self.columns is not None:
            return sorted(self.columns)
        return sorted({k for row in self.rows[:50] for k in row})


def scan_source(src: SourceConfig, cfg: DataConfig) -> Scan | None:
    """The first rows of a bundled or path source; None for a hub source (not read here)."""
    if src.bundled:
        return _scan_bundled(src.bundled)
    if src.path is None:
        return None
    path = Path(src.path).expanduser()
    if not path.exists():
        raise ScanProblem(
            "path",
            f"{src.path} not found (relative paths start at the working directory, {Path.cwd()})",
        )
    if src.format is not None:
        fmt = src.format
    else:
        try:
            fmt = infer_format(path)
        except DataError as exc:
            raise ScanProblem("path", f"{exc.problem} ({exc.hint})") from None
    where = "format" if src.format is not None else "path"
    if fmt == "text_folder":
        return _scan_text_folder(path, src.path, where)
    if fmt == "hf_disk":
        return _scan_hf_disk(path, src, where)
    if path.is_dir():
        raise ScanProblem(
            where,
            f"{src.path} is a folder, but format {fmt} reads one file "
            "(a folder is read as text_folder or hf_disk)",
        )
    size = path.stat().st_size
    if size == 0:
        raise ScanProblem("path", f"{src.path} is empty")
    if size <= WHOLE_FILE_BYTES:
        try:
            data = READERS.get(fmt)(path, src.path, cfg)
        except DataError as exc:
            raise ScanProblem("path", str(exc)) from None
        rows = [r.row for r in data.rows if r.problem is None and r.row is not None]
        return Scan(src.path, rows, data.columns, True, what="every row")
    return _scan_head(path, src.path, fmt, cfg)


def _scan_bundled(name: str) -> Scan:
    from tunelab.data.bundled import BUNDLED
    from tunelab.models.bundled import BundledAssetMissing

    try:
        data = BUNDLED[name]()
    except BundledAssetMissing as exc:
        raise ScanProblem("bundled", str(exc)) from None
    rows = [r.row for r in data.rows if r.problem is None and r.row is not None]
    return Scan(
        data.display, rows, data.columns, True, dict(data.default_columns), data.default_labels, "every row"
    )


def _scan_text_folder(path: Path, display: str, where: str) -> Scan:
    layout = "a text folder is <root>/<label>/*.txt; a datasets save_to_disk folder has dataset_info.json"
    if not path.is_dir():
        raise ScanProblem(where, f"{display} is a file, but format text_folder reads a folder ({layout})")
    labels = [d.name for d in sorted(path.iterdir()) if d.is_dir() and any(d.glob("*.txt"))]
    if not labels:
        raise ScanProblem(where, f"{display}: no <label>/*.txt files found ({layout})")
    # one row per label folder: its name is every row's label, and each file is one row's text
    rows = [{"text": f"({name}/*.txt)", "label": name} for name in labels]
    return Scan(display, rows, {"text", "label"}, True, what="the label folders")


def _scan_hf_disk(path: Path, src: SourceConfig, where: str) -> Scan:
    display = str(src.path)
    if not path.is_dir() or not any((path / m).exists() for m in HF_DISK_MARKERS):
        raise ScanProblem(
            where,
            f"{display} is not a folder written by datasets' save_to_disk "
            f"(it has none of {list(HF_DISK_MARKERS)})",
        )
    try:
        from datasets import DatasetDict, load_from_disk

        ds = load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ScanProblem(where, f"{display}: not a readable save_to_disk folder: {exc}") from None
    if isinstance(ds, DatasetDict):
        if src.hub_split not in ds:
            raise ScanProblem("hub_split", f"{display} has no split {src.hub_split!r}; it has {sorted(ds)}")
        ds = ds[src.hub_split]
    n = min(len(ds), SCAN_ROWS)
    rows = ds.select(range(n)).to_list()
    return Scan(display, rows, set(ds.column_names), len(ds) <= SCAN_ROWS, what=f"the first {n} rows")


def _open(path: Path) -> IO[bytes]:
    return bz2.open(path, "rb") if path.suffix == ".bz2" else path.open("rb")


def _scan_head(path: Path, display: str, fmt: str, cfg: DataConfig) -> Scan:
    """The first rows of a large file (the data stage reads it whole, which can take a while)."""
    try:
        if fmt == "parquet":
            return _head_parquet(path, display)
        with _open(path) as stream:
            if fmt == "jsonl":
                return _head_jsonl(stream, display, cfg)
            return _head_delimited(stream, display, "\t" if fmt == "tsv" else ",")
    except (OSError, EOFError) as exc:
        raise ScanProblem("path", f"{display}: cannot read it as {fmt}: {exc}") from None


def _head_jsonl(stream: IO[bytes], display: str, cfg: DataConfig) -> Scan:
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(stream, 1):
        if lineno == 1:
            line = line.removeprefix(BOM)
            if line.lstrip().startswith(b"["):
                return Scan(display, [], None, False, what="nothing (a large JSON array is not scanned)")
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            continue  # the data stage quarantines the line
        except json.JSONDecodeError as exc:
            if cfg.on_malformed == "error":
                raise ScanProblem(
                    "path",
                    f"{display}:{lineno}: not valid JSON at column {exc.colno}: {exc.msg} "
                    "(fix or delete the line, or set data.on_malformed: quarantine)",
                ) from None
            continue
        if isinstance(obj, dict):
            rows.append(obj)
        if len(rows) >= SCAN_ROWS:
            return Scan(display, rows, None, stream.read(1) == b"", what=f"the first {lineno} lines")
    return Scan(display, rows, None, True, what="every row")


def _head_delimited(stream: IO[bytes], display: str, delimiter: str) -> Scan:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise ScanProblem("path", f"{display}:1: cannot read the header: {exc}") from None
    rows: list[dict[str, Any]] = []
    try:
        for values in reader:
            if len(values) == len(header):
                rows.append(dict(zip(header, values, strict=True)))
            if len(rows) >= SCAN_ROWS:
                done = next(reader, None) is None
                return Scan(display, rows, set(header), done, what=f"the first {len(rows)} rows")
    except csv.Error as exc:
        raise ScanProblem("path", f"{display}:{reader.line_num}: cannot parse the row: {exc}") from None
    return Scan(display, rows, set(header), True, what="every row")


def _head_parquet(path: Path, display: str) -> Scan:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        batch = next(pf.iter_batches(batch_size=SCAN_ROWS), None)
    except (pa.ArrowException, OSError) as exc:
        raise ScanProblem("path", f"{display}: not a readable Parquet file: {exc}") from None
    rows = batch.to_pylist() if batch is not None else []
    if not rows:
        raise ScanProblem("path", f"{display}: the file is empty (0 rows)")
    total = pf.metadata.num_rows
    return Scan(
        display, rows, set(pf.schema_arrow.names), total <= SCAN_ROWS, what=f"the first {len(rows)} rows"
    )
