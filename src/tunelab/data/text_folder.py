"""``<root>/<label>/*.txt`` folders: one row per file; every file it does not take is counted."""

from __future__ import annotations

import os
from pathlib import Path

from tunelab.config.data import DataConfig
from tunelab.data.errors import DataError
from tunelab.data.sources import BOM, READERS, RawRow, SourceData

SKIP_TOP = "a file at the top level, not inside a <label>/ folder"
SKIP_NESTED = "nested deeper than <root>/<label>/"
SKIP_NOT_TXT = "not a .txt file"


def _hidden(name: str) -> bool:
    return name.startswith(".")  # .DS_Store, .ipynb_checkpoints, .git ...


@READERS.register("text_folder")
def read_text_folder(path: Path, display: str, cfg: DataConfig) -> SourceData:
    """``root/<label>/*.txt``: one row per file, the folder name is the label.

    Hidden folders and files are ignored. Any other file that is not ``<label>/<name>.txt`` (at the
    top level, nested deeper, another extension) becomes a row with a problem, so it is counted and
    quarantined (step ``read``) rather than lost without a word.
    """
    if not path.is_dir():
        raise DataError(display, "folder not found", "a text folder is <root>/<label>/*.txt")
    rows: list[RawRow] = []
    skipped: dict[str, list[str]] = {}
    hidden = 0
    read = 0

    def skip(f: Path, reason: str) -> None:
        rel = f.relative_to(path).as_posix()
        skipped.setdefault(reason, []).append(f"{display}/{rel}")
        rows.append(RawRow(f"{display}/{rel}", {"path": rel}, f"skipped: {reason}"))

    for entry in sorted(path.iterdir()):
        if _hidden(entry.name):
            hidden += 1
            continue
        if not entry.is_dir():
            skip(entry, SKIP_TOP)
            continue
        for folder, subdirs, files in os.walk(entry):
            hidden += sum(_hidden(d) for d in subdirs) + sum(_hidden(f) for f in files)
            subdirs[:] = sorted(d for d in subdirs if not _hidden(d))
            nested = Path(folder) != entry
            for name in sorted(f for f in files if not _hidden(f)):
                f = Path(folder) / name
                if nested:
                    skip(f, SKIP_NESTED)
                    continue
                if f.suffix.lower() != ".txt":
                    skip(f, SKIP_NOT_TXT)
                    continue
                read += 1
                where = f"{display}/{entry.name}/{name}"
                raw = f.read_bytes()
                if raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                try:
                    rows.append(RawRow(where, {"text": raw.decode("utf-8"), "label": entry.name}))
                except UnicodeDecodeError as exc:
                    rows.append(
                        RawRow(
                            where,
                            {"text": raw.decode("utf-8", "replace"), "label": entry.name},
                            f"invalid UTF-8 byte at offset {exc.start}",
                        )
                    )
    if not read:
        other = sum(len(v) for v in skipped.values())
        raise DataError(
            display,
            "no <label>/*.txt files found" + (f" ({other} other file(s) skipped)" if other else ""),
            "a text folder is <root>/<label>/*.txt",
        )
    data = SourceData(display, display, rows, columns={"text", "label"})
    data.skipped, data.hidden = skipped, hidden
    return data
