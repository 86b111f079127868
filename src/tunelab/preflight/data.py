"""Data checks: each source is there and readable, its mapped columns exist, and the label settings
fit the labels its first rows carry."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from typing import Any

from tunelab.config.data import DataConfig, SourceConfig
from tunelab.data.records import label_parts
from tunelab.preflight.context import Context, hub_offline
from tunelab.preflight.scan import Scan, ScanProblem, scan_source


def check(ctx: Context) -> None:
    cfg = ctx.recipe.data
    fmt = ctx.task.data_format if ctx.task is not None else None
    scans: list[Scan | None] = []
    for i, src in enumerate(cfg.sources):
        key = f"data.sources.{i}"
        scan = _scan(ctx, key, src, cfg)
        scans.append(scan)
        if scan is not None and fmt is not None:
            _check_columns(ctx, key, src, scan, fmt)
    if fmt is not None:
        _check_group_by(ctx, scans)
        _check_labels(ctx, scans)


def _scan(ctx: Context, key: str, src: SourceConfig, cfg: DataConfig) -> Scan | None:
    if src.hub:
        _check_hub_dataset(ctx, f"{key}.hub", src.hub)
        return None
    try:
        return scan_source(src, cfg)
    except ScanProblem as exc:
        ctx.findings.problem(f"{key}.{exc.field}", exc.message)
        return None


def _check_hub_dataset(ctx: Context, key: str, name: str) -> None:
    if hub_offline():
        ctx.findings.note(key, f"hub dataset {name!r} not checked: offline (HF_HUB_OFFLINE=1)")
        return
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        HfApi().dataset_info(name, timeout=10)
    except GatedRepoError:
        ctx.findings.note(key, f"hub dataset {name!r} is gated: request access on its page before running")
    except RepositoryNotFoundError:
        ctx.findings.problem(key, f"no dataset {name!r} on the Hugging Face hub (or it is private)")
    except Exception as exc:  # no network, a proxy, a timeout: none of them is the recipe's fault
        ctx.findings.note(
            key, f"hub dataset {name!r} not checked: cannot reach the hub ({type(exc).__name__})"
        )
    else:
        ctx.findings.note(key, f"hub dataset {name!r} exists; its rows are not scanned")


# ---- columns -------------------------------------------------------------------------------------


def _mapping(src: SourceConfig, scan: Scan) -> dict[str, str]:
    return {**scan.default_columns, **src.columns}


def _col(mapping: dict[str, str], name: str) -> str:
    return mapping.get(name, name)


def _column_problem(ctx: Context, key: str, src: SourceConfig, scan: Scan, name: str, want: str) -> None:
    mapped = name in src.columns
    where = f"{key}.columns.{name}" if mapped else key
    fix = "" if mapped else f"; map yours with columns: {{{name}: <your column>}}"
    ctx.findings.problem(
        where, f"{scan.display} has no column {want} (columns: {scan.seen_columns()[:12]}){fix}"
    )


def _check_columns(ctx: Context, key: str, src: SourceConfig, scan: Scan, fmt: str) -> None:
    m = _mapping(src, scan)

    def has(name: str) -> bool | None:
        return scan.has_column(_col(m, name))

    if fmt in ("labelled", "text"):
        names = ["text", "label"] if fmt == "labelled" else ["text"]
        for name in names:
            if has(name) is False:
                _column_problem(ctx, key, src, scan, name, repr(_col(m, name)))
        if fmt == "labelled" and _col(m, "text") == _col(m, "label"):
            side = "label" if "label" in src.columns else "text"
            ctx.findings.problem(
                f"{key}.columns.{side}",
                f"text and label are both mapped to column {_col(m, 'text')!r}: "
                "the model would see the answer",
            )
    elif fmt == "chat":
        if has("messages") is not False:
            return
        for ask, answer in (("instruction", "output"), ("prompt", "response")):
            got_ask, got_answer = has(ask), has(answer)
            if got_ask or got_answer:
                if not got_ask:
                    _column_problem(
                        ctx, key, src, scan, ask, f"{_col(m, ask)!r} (it has {_col(m, answer)!r})"
                    )
                if not got_answer:
                    _column_problem(
                        ctx, key, src, scan, answer, f"{_col(m, answer)!r} (it has {_col(m, ask)!r})"
                    )
                return
        want = " or ".join(repr(_col(m, n)) for n in ("messages", "instruction", "prompt"))
        where = next(
            (f"{key}.columns.{n}" for n in ("messages", "instruction", "prompt") if n in src.columns), key
        )
        ctx.findings.problem(
            where,
            f"{scan.display} has no column {want} (columns: {scan.seen_columns()[:12]}); sft needs "
            "messages, instruction/output or prompt/response (map yours with columns:)",
        )


def _check_group_by(ctx: Context, scans: list[Scan | None]) -> None:
    group_by = ctx.recipe.data.split.group_by
    sources = ctx.recipe.data.sources
    if group_by is None or any(s is None or s.has_column(group_by) is None for s in scans):
        return  # a source not scanned might have it
    assert all(s is not None for s in scans)
    if not any(
        s.has_column(group_by) or s.has_column(_col(_mapping(src, s), "group"))  # type: ignore[union-attr]
        for s, src in zip(scans, sources, strict=True)
    ):
        ctx.findings.problem(
            "data.split.group_by",
            f"no source has a column {group_by!r}, so no rows would be grouped "
            f"(columns: {scans[0].seen_columns()[:12]})",  # type: ignore[union-attr]
        )


# ---- labels ---------------------------------------------------------------------------------------


def stage_normaliser(cfg: DataConfig) -> Callable[[str], str]:
    """A row label as the ``labels`` cleaning step leaves it (the form the allow-list is matched in)."""
    lc = cfg.clean.labels
    if "labels" not in cfg.clean.steps or not lc.enabled:
        return lambda label: label
    mapping = {(k.strip().lower() if lc.lowercase else k.strip()): v for k, v in lc.map.items()}

    def normalise(label: str) -> str:
        label = " ".join(label.split())
        if lc.lowercase:
            label = label.lower()
        return mapping.get(label, label)

    return normalise


def loose(label: str) -> str:
    """A label with case, width and spacing folded: two labels meant to be one compare equal."""
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())


def _present(value: Any) -> bool:
    """A value the data stage reads as given (as ``tunelab.data.formats`` does): not None/NaN/blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return not (isinstance(value, str) and not value.strip())


def _row_labels(ctx: Context, src: SourceConfig, scan: Scan, normalise: Callable[[str], str]) -> list[str]:
    m = _mapping(src, scan)
    column = _col(m, "label")
    if column == _col(m, "text"):
        return []  # reported as a column problem; its "labels" are texts
    out: list[str] = []
    for row in scan.rows:
        value = row.get(column)
        if not _present(value):
            continue
        label, why = ctx.task.parse_label(value, recipe=ctx.recipe)
        if why is None:
            out.extend(normalise(n) for n in label_parts(label))
    return out


def _check_labels(ctx: Context, scans: list[Scan | None]) -> None:
    cfg, task = ctx.recipe.data, ctx.task
    if not task.has_labels or task.data_format != "labelled":
        if cfg.labels is not None:
            ctx.findings.problem(
                "data.labels",
                f"task {ctx.task_name} has no label classes, so data.labels does nothing "
                "(it applies to classification and multilabel): remove it",
            )
        return
    if cfg.labels is not None and "labels" not in cfg.clean.steps:
        ctx.findings.problem(
            "data.labels",
            "the list is enforced by the 'labels' cleaning step, which data.clean.steps leaves out: "
            "add 'labels' to the steps or remove data.labels",
        )
    normalise = stage_normaliser(cfg)
    per_source: list[tuple[int, list[str], Scan]] = [
        (i, _row_labels(ctx, src, s, normalise), s)
        for i, (src, s) in enumerate(zip(cfg.sources, scans, strict=True))
        if s is not None
    ]
    seen = {name for _, names, _ in per_source for name in names}
    if not seen:
        return  # no labels read at all: a missing column or file is reported on its own
    complete = len(per_source) == len(cfg.sources) and all(s.complete for *_, s in per_source)
    unread = [f"data.sources.{i}: not scanned" for i, s in enumerate(scans) if s is None]
    scanned = [f"{s.display}: {s.what}" for *_, s in per_source if not s.complete]
    partial = "; ".join(scanned + unread)
    report = ctx.findings.problem if complete else ctx.findings.note
    if cfg.labels is not None:
        _check_listed(ctx, cfg.labels, seen, partial, report)
    if ctx.kind == "labels":
        _check_classes(ctx, per_source, partial, report)


def _check_listed(ctx: Context, listed: list[str], seen: set[str], partial: str, report: Any) -> None:
    by_loose = {loose(n): n for n in sorted(seen)}
    shown = sorted(seen)[:12]
    for j, label in enumerate(listed):
        key = f"data.labels.{j}"
        if label in seen:
            continue
        if loose(label) in by_loose:
            ctx.findings.problem(
                key,
                f"label {label!r} matches no row as written: the labels step makes the rows' label "
                f"{by_loose[loose(label)]!r}; write that",
            )
        else:
            where = f"the rows scanned ({partial}; " if partial else "the data ("
            report(key, f"label {label!r} never occurs in {where}labels seen: {shown})")


def _check_classes(
    ctx: Context, per_source: list[tuple[int, list[str], Scan]], partial: str, report: Any
) -> None:
    cfg = ctx.recipe.data
    classes: set[str] = set()
    for _, names, scan in per_source:
        allowed = cfg.labels if cfg.labels is not None else scan.default_labels
        classes.update(n for n in names if allowed is None or n in allowed)
    if len(classes) == 1:
        only = next(iter(classes))
        key = "data.sources.0" if len(cfg.sources) == 1 else "data.sources"
        kept = " that data.labels keeps" if cfg.labels is not None else ""
        rows = (
            f"every row scanned{kept} has label {only!r} ({partial})"
            if partial
            else (f"every row{kept} has label {only!r}")
        )
        report(key, f"{rows}: classification needs at least two classes")
