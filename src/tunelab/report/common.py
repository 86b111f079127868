"""What every section of the report shares: the run it reads (files only), the error a section turns
into a notice naming the file, the "did not run" line, and number formatting."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab import html as h
from tunelab.html import escape
from tunelab.runs import MANIFEST

# stage -> what it is called in a sentence; every tunelab stage is also a CLI verb
STAGE_COMMANDS = {
    "data": "tunelab data RECIPE",
    "train": "tunelab train RECIPE",
    "evaluate": "tunelab evaluate RECIPE",
    "explain": "tunelab explain RECIPE",
    "generate": "tunelab generate RECIPE",
    "export": "tunelab export RECIPE",
    "audit": "tunelab audit RECIPE",
}


class Problem(Exception):
    """An artifact is missing or malformed; the section shows this message (it names the file)."""


@dataclass
class Run:
    """One run directory as the report sees it: the manifest and resolved recipe read once, files on demand.

    ``examples`` and ``samples`` are the gallery sizes of the ``report`` section. ``reading`` is the
    last file a section asked for, so an unexpected shape in it can be reported by name.
    """

    root: Path
    examples: int = 5
    samples: int = 5
    manifest: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # manifest.json / recipe.yaml that could not be read
    reading: str = ""

    @classmethod
    def open(cls, root: Path, examples: int = 5, samples: int = 5) -> Run:
        run = cls(Path(root), examples, samples)
        try:
            manifest = run.json(MANIFEST)
            run.manifest = manifest if isinstance(manifest, dict) else {}
            if not isinstance(manifest, dict):
                run.problems.append(f"{MANIFEST} is not a JSON object")
        except Problem as exc:
            run.problems.append(str(exc))
        if run.has("recipe.yaml"):
            import yaml

            try:
                recipe = yaml.safe_load(run.path("recipe.yaml").read_text(encoding="utf-8"))
                run.recipe = recipe if isinstance(recipe, dict) else {}
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                run.problems.append(f"recipe.yaml could not be read: {type(exc).__name__}")
        return run

    def path(self, rel: str) -> Path:
        return self.root / rel

    def has(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def text(self, rel: str) -> str:
        self.reading = rel
        try:
            return self.path(rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise Problem(f"{rel} is missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise Problem(f"{rel} could not be read: {type(exc).__name__}: {exc}") from None

    def json(self, rel: str) -> Any:
        text = self.text(rel)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise Problem(f"{rel} is not valid JSON ({exc})") from None

    def object(self, rel: str) -> dict[str, Any]:
        """A JSON file that must hold an object."""
        obj = self.json(rel)
        if not isinstance(obj, dict):
            raise Problem(f"{rel} does not hold a JSON object")
        return obj

    def jsonl(self, rel: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The objects of a JSONL file (the first ``limit``); a bad line is an error naming it."""
        rows = []
        for i, line in enumerate(self.text(rel).splitlines(), 1):
            if not line.strip():
                continue
            if limit is not None and len(rows) >= limit:
                break
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise Problem(f"{rel} line {i} is not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise Problem(f"{rel} line {i} is not a JSON object")
            rows.append(row)
        return rows

    def stages(self) -> dict[str, dict[str, Any]]:
        """The manifest's stage records except the report's own."""
        recs = self.manifest.get("stages")
        if not isinstance(recs, dict):
            return {}
        return {k: v for k, v in recs.items() if k != "report" and isinstance(v, dict)}

    def record(self, stage: str) -> dict[str, Any]:
        return self.stages().get(stage) or {}

    def setting(self, *keys: str) -> Any:
        """A value of the resolved recipe (``recipe.yaml``), or None."""
        node: Any = self.recipe
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        return node


def not_run(stage: str, title: str, record: dict[str, Any]) -> str:
    """The line shown in place of a section whose stage has no outputs: why, and what produces them."""
    cmd = STAGE_COMMANDS.get(stage, f"tunelab {stage} RECIPE")
    status = record.get("status")
    how = f" Run <code>{escape(cmd)}</code> (or list <code>{escape(stage)}</code> under the recipe's stages)."
    if status == "failed":
        err = str(record.get("error") or "no error recorded")[:400]
        return (
            f"<div class='warn notrun' data-stage='{escape(stage)}'><b>{escape(title)}</b>: the "
            f"{escape(stage)} stage failed: {escape(err)}.{how}</div>"
        )
    what = "is marked running (or was interrupted)" if status == "running" else "did not run"
    return (
        f"<div class='info notrun' data-stage='{escape(stage)}'><b>{escape(title)}</b>: the "
        f"{escape(stage)} stage {what}.{how}</div>"
    )


def link(rel: str, run: Run, text: str | None = None) -> str:
    """A relative link to another page of the run, when it exists."""
    if not run.has(rel):
        return ""
    return f"<p>Full page: <a href='{escape(rel)}'>{escape(text or rel)}</a></p>"


def num(v: Any) -> float | None:
    """``v`` as a finite float (a ``{"value": ...}`` figure gives its value), or None."""
    if isinstance(v, dict):
        v = v.get("value")
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def f(v: Any, digits: int = 4) -> str:
    """A number for a table: 4 significant figures, ints as they are, '-' for nothing."""
    if isinstance(v, dict):
        v = v.get("value")
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return h.fmt(v, digits) if math.isfinite(v) else str(v)
    return str(v)


def interval(fig: Any) -> str:
    """``[low, high]`` of a figure with a bootstrap interval, else ''."""
    if isinstance(fig, dict) and num(fig.get("low")) is not None and num(fig.get("high")) is not None:
        return f"[{f(fig['low'], 3)}, {f(fig['high'], 3)}]"
    return ""


def figure(fig: Any) -> str:
    """A value with its interval: ``0.8333 [0.78, 0.88]``."""
    return f"{f(fig)} {interval(fig)}".strip()


def size(n: Any) -> str:
    """Bytes in B, KiB, MiB or GiB."""
    x = num(n)
    if x is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if x < 1024 or unit == "GiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return "-"


def scalars(obj: Any, prefix: str = "", depth: int = 2) -> list[tuple[str, Any]]:
    """(dotted key, value) of the numbers, strings and booleans of a nested dict, ``depth`` levels down."""
    out: list[tuple[str, Any]] = []
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth > 1:
            out += scalars(v, key + ".", depth - 1)
        elif v is None or isinstance(v, str | int | float | bool):
            out.append((key, v))
    return out


def mapping(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def items(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def attempt(run: Run, fn: Any, *args: Any) -> str:
    """``fn(run, *args)``, or a notice naming the file it could not show (a part of a section)."""
    try:
        return fn(run, *args)
    except Problem as exc:
        return h.notice(str(exc))
    except Exception as exc:  # an unexpected shape in one file must not lose the rest of the page
        return h.notice(f"{run.reading or 'an artifact'} could not be shown: {type(exc).__name__}: {exc}")


def kv(rows: Any, caption: str = "") -> str:
    """A two-column table of (name, value) rows, the names as row headers and no header row."""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(f(v))}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{cap}{body}</table>"


def figure_cards(figs: Any) -> str:
    """Headline cards of (figure, label): the value large, its bootstrap interval small beneath."""
    out = []
    for fig, label in figs:
        low = interval(fig)
        small = f"<small>{escape(low)}</small>" if low else ""
        out.append(f"<div class='card'><b>{escape(f(fig))}</b>{small}{escape(label)}</div>")
    return f"<div class='cards'>{''.join(out)}</div>"
