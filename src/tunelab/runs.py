"""The run directory: layout, manifest, atomic writes, stage status.

Stages talk to each other only through this folder. Every file is written under a temporary
name and renamed into place, so a killed run never leaves a file that looks whole but is not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def _umask() -> int:
    """The process umask (reading it means setting it: put it straight back)."""
    old = os.umask(0)
    os.umask(old)
    return old


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600: give it the mode open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: Path, rows: Any) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700: give it the mode mkdir() would
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class MissingArtifactError(RuntimeError):
    """A stage needs an artifact that an earlier stage has not written."""


@dataclass
class StageResult:
    """What a stage reports back: its name, headline figures and the files it wrote."""

    stage: str
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    skipped: bool = False


class RunDir:
    """One run's folder (``<output_dir>/<name>``) and its manifest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # layout -----------------------------------------------------------------
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def require(self, rel: str, stage: str) -> Path:
        """Return an artifact path, or say which stage to run first."""
        p = self.root / rel
        if not p.exists():
            raise MissingArtifactError(
                f"{p} is missing: run `tunelab {stage} RECIPE` (or `tunelab run RECIPE`) first"
            )
        return p

    # artifacts of earlier stages ---------------------------------------------
    def split_rows(self, split: str) -> list[dict[str, Any]]:
        """The rows of a prepared split (``data/<split>.jsonl``)."""
        return read_jsonl(self.require(f"data/{split}.jsonl", "data"))

    def labels(self) -> list[str]:
        """The label vocabulary the data stage wrote (``data/labels.json``)."""
        path = self.require("data/labels.json", "data")
        return json.loads(path.read_text(encoding="utf-8"))["labels"]

    # manifest ---------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        p = self.root / MANIFEST
        if p.exists():
            return json.loads(p.read_text(encoding="utf-8"))
        return {"created": _now(), "environment": environment(), "stages": {}, "inputs": {}}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """The one place the manifest is written (under accelerate, only rank 0 calls it)."""
        atomic_write_json(self.root / MANIFEST, manifest)

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        m = self.read_manifest()
        m.update(fields)
        self.write_manifest(m)
        return m

    def stage_record(self, stage: str) -> dict[str, Any] | None:
        return self.read_manifest().get("stages", {}).get(stage)

    def set_stage_record(
        self, stage: str, record: dict[str, Any], inputs: dict[str, Any] | None = None
    ) -> None:
        m = self.read_manifest()
        m.setdefault("stages", {})[stage] = record
        if inputs:
            m.setdefault("inputs", {}).update(inputs)
        self.write_manifest(m)

    def is_done(self, stage: str, fingerprint: str | None = None) -> bool:
        """The stage finished (with this fingerprint, when one is given)."""
        rec = self.stage_record(stage)
        if not rec or rec.get("status") != "done":
            return False
        return fingerprint is None or rec.get("fingerprint") == fingerprint

    @contextlib.contextmanager
    def stage(self, name: str, fingerprint: str = "", write: bool = True) -> Iterator[dict[str, Any]]:
        """Mark a stage running, time it, and record it done (or failed, with its error).

        The caller may add fields to the yielded dict; they are stored in the done record.
        ``write=False`` (a non-main process under accelerate) times the stage but writes nothing.
        """
        started = _now()
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            self.set_stage_record(name, {"status": "running", "started": started, "fingerprint": fingerprint})
        info: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            yield info
        except BaseException as exc:
            if write:
                self.set_stage_record(
                    name,
                    {
                        "status": "failed",
                        "started": started,
                        "seconds": round(time.perf_counter() - start, 3),
                        "error": f"{type(exc).__name__}: {exc}"[:2000],
                    },
                )
            raise
        if write:
            inputs = info.pop("inputs", None)
            record = {
                "status": "done",
                "started": started,
                "finished": _now(),
                "seconds": round(time.perf_counter() - start, 3),
                "fingerprint": fingerprint,
                "run_id": uuid.uuid4().hex[:12],  # downstream fingerprints change when this stage reruns
                **info,
            }
            self.set_stage_record(name, record, inputs)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def environment() -> dict[str, Any]:
    """Versions and commit that made this run."""
    import importlib.metadata as md

    versions = {}
    for dist in ("tunelab", "torch", "transformers", "peft", "accelerate", "datasets"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
