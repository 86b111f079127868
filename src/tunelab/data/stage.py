"""The data stage: recipe.data -> <run>/data/{train,validation,test}.jsonl, labels, quarantine, report.

Order: read -> format -> cleaning steps -> conflicting labels -> exact dedup -> near dedup -> split
-> leakage check -> source weights. Every row removed on the way is in quarantine.jsonl, so
``rows read = rows kept + rows quarantined`` (copies made by a source weight above 1 are extra).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from functools import cache, partial
from typing import Any

from tunelab.config import Recipe
from tunelab.config.data import SPLITS, DataConfig
from tunelab.data import report as rep
from tunelab.data.clean import CleanContext, allowed_normaliser, build_steps, run_steps
from tunelab.data.dedup import NearDup, build_index, exact_dedup, leakage, near_dedup, resolve_conflicts
from tunelab.data.errors import DataError
from tunelab.data.formats import to_records
from tunelab.data.long_texts import count as long_text_count
from tunelab.data.long_texts import inputs as long_text_inputs
from tunelab.data.quarantine import Quarantine
from tunelab.data.records import Record, label_parts
from tunelab.data.report_html import render
from tunelab.data.sources import SourceData, input_hashes, read_source
from tunelab.data.split import assign
from tunelab.runs import RunDir, StageResult, atomic_write_json, atomic_write_jsonl, atomic_write_text
from tunelab.tasks import Task, get_task


def inputs(recipe: Recipe) -> dict[str, Any]:
    """What the data stage reads from outside the run directory: its files (and tokenizer)."""
    cfg = recipe.data
    key: dict[str, Any] = dict(input_hashes(cfg))
    if (
        cfg.clean.length.min_tokens is not None
        or cfg.clean.length.max_tokens is not None
        or cfg.report.length_unit == "tokens"
    ):
        key["tokenizer"] = recipe.model.model_dump(mode="json")  # token counts depend on the model
    if get_task(recipe.task).data_format == "labelled":
        key["long_texts"] = long_text_inputs(recipe.model)  # the report counts the model's tokens
    return key


def run(recipe: Recipe, run_dir: RunDir, tokenizer: Any = None) -> StageResult:
    """Prepare the run's data. ``tokenizer`` overrides the model's (tests pass a small one)."""
    report = prepare(recipe, run_dir, tokenizer)
    names = [f"{s}.jsonl" for s in SPLITS] + ["quarantine.jsonl", "data_report.json", "data_report.html"]
    if (run_dir.data / "labels.json").exists():
        names.append("labels.json")
    metrics = {**report["summary"], "warnings": list(report["warnings"])}
    return StageResult("data", metrics=metrics, artifacts=[str(run_dir.data / n) for n in names])


def _tokenizer_loader(recipe: Recipe, tokenizer: Any) -> Callable[[], Any]:
    def load() -> Any:
        if tokenizer is not None:
            return tokenizer
        from tunelab.models.resolve import load_tokenizer  # lazy: loading a model tokenizer takes time

        return load_tokenizer(recipe.model)

    return load


def prepare(recipe: Recipe, run_dir: RunDir, tokenizer: Any = None) -> dict[str, Any]:
    """Do the work and write every artifact; return the report."""
    task = get_task(recipe.task)
    o = rep.Outcome(task=task.data_format, read=0, quarantine=Quarantine(), by_split={})
    records, allowed = _read(recipe, task, o)
    try:
        return _prepare(recipe, run_dir, tokenizer, task, o, records, allowed)
    except DataError:
        # the rows removed so far explain most stops: keep them where the messages point
        atomic_write_jsonl(run_dir.data / "quarantine.jsonl", o.quarantine.rows)
        raise


def _prepare(
    recipe: Recipe,
    run_dir: RunDir,
    tokenizer: Any,
    task: Task,
    o: rep.Outcome,
    records: list[Record],
    allowed: dict[int, Any],
) -> dict[str, Any]:
    cfg, seed, fmt = recipe.data, recipe.run.seed, task.data_format
    reject = o.quarantine.add
    load_tokenizer = cache(_tokenizer_loader(recipe, tokenizer))  # loaded once, by whoever needs it first
    ctx = CleanContext(task=fmt, allowed_labels=allowed, tokenizer_loader=load_tokenizer)
    clean_steps = build_steps(cfg, ctx)
    records = run_steps(records, clean_steps, reject)
    after = len(records) + sum(o.quarantine.counts[n] for n, _ in clean_steps)
    for name, _ in clean_steps:
        after -= o.quarantine.counts[name]
        o.steps.append((name, after))
    o.stats = ctx.stats
    _check_listed_labels(cfg, ctx, records, fmt, o)
    _check_label_shape(records, recipe, task, o)

    records, near = _deduplicate(records, cfg, fmt, o)
    together = _together(near, records) if near and cfg.dedup.near.action == "keep_together" else []
    split_of, conflicts = assign(records, cfg.split, seed, together)
    drop = {i for i, _ in conflicts}
    for i, why in conflicts:
        reject("split", why, records[i].source, records[i].raw)
    kept = [(r, s) for i, (r, s) in enumerate(zip(records, split_of, strict=True)) if i not in drop]
    o.steps.append(("split", len(kept)))
    o.by_split = {s: [r for r, sp in kept if sp == s] for s in SPLITS}
    if not o.by_split["train"]:
        why = "; ".join(f"{step}: {n}" for step, n in o.quarantine.counts.most_common())
        pins = sorted({r.pin for r, _ in kept if r.pin})
        pinned = f", all in explicit {'/'.join(pins)} files" if kept and all(r.pin for r, _ in kept) else ""
        raise DataError(
            _files(o),
            f"no rows left for train ({len(kept)} kept{pinned}, {len(o.quarantine)} quarantined"
            + (f" by step: {why}" if why else "")
            + ")",
            f"see {run_dir.data / 'quarantine.jsonl'} for each removed row and its reason",
        )
    _check_eval_labels(o.by_split, fmt)
    _check_leakage(kept, near, cfg, o)
    o.by_split["train"], o.copies = _apply_weights(o.by_split["train"], cfg, seed, reject)
    if any(s.weight != 1 for s in cfg.sources):
        o.steps.append(("mix", sum(len(v) for v in o.by_split.values()) - o.copies))

    out = run_dir.data
    for s in SPLITS:
        atomic_write_jsonl(out / f"{s}.jsonl", (_output_row(r, fmt, cfg) for r in o.by_split[s]))
    atomic_write_jsonl(out / "quarantine.jsonl", o.quarantine.rows)
    unit, counter = _length_counter(cfg, ctx)
    long_texts = None
    if fmt == "labelled":  # texts the model reads: how many are longer than model.max_length
        long_texts = long_text_count(o.by_split, load_tokenizer, recipe.model, cfg.long_text_warning)
    report = rep.build(o, cfg, seed, unit, counter, long_texts)
    if task.has_labels:
        vocabulary = task.label_vocabulary(r.label for r in o.by_split["train"])
        atomic_write_json(out / "labels.json", {"labels": vocabulary})
    else:
        (out / "labels.json").unlink(missing_ok=True)  # a stale one from an earlier classification run
    atomic_write_json(out / "data_report.json", report)
    atomic_write_text(out / "data_report.html", render(report))
    return report


def _read(recipe: Recipe, task: Task, o: rep.Outcome) -> tuple[list[Record], dict[int, Any]]:
    """Read and validate every source; returns the records and each source's label allow-list."""
    cfg, seed, fmt = recipe.data, recipe.run.seed, task.data_format
    parse_label = partial(task.parse_label, recipe=recipe)
    records: list[Record] = []
    allowed: dict[int, list[str] | None] = {}
    group_cols: list[tuple[SourceData, bool, list[str]]] = []
    for origin, src in enumerate(cfg.sources):
        data = read_source(src, cfg, seed)
        o.read += len(data.rows)
        columns = {**data.default_columns, **src.columns}
        o.columns[origin] = columns
        if fmt == "labelled" and columns.get("label", "label") == columns.get("text", "text"):
            raise DataError(
                data.display,
                f"the label and the text are both read from column {columns.get('text', 'text')!r}",
                "map label to the column that holds the class: columns: {label: <column>}",
            )
        if cfg.split.group_by:
            group_cols.append(_has_group_column(data, cfg.split.group_by, columns.get("group", "group")))
        _note_skipped(data, o)
        # the recipe's list, else a bundled dataset's own (Rotten Tomatoes leaves out `plot`)
        allowed[origin] = cfg.labels if cfg.labels is not None else data.default_labels
        got = to_records(data, src, origin, fmt, cfg.split.group_by, o.quarantine.add, parse_label)
        o.sources.append(
            {
                "name": data.name,
                "location": data.display,
                "rows_read": len(data.rows),
                "rows_available": data.available,
                "rows_valid": len(got),
                "split": src.split,
                "weight": src.weight,
                "labels_allowed": allowed[origin],
            }
        )
        records.extend(got)
    if group_cols and not any(found for _, found, _ in group_cols):
        data, _, seen = group_cols[0]
        raise DataError(
            data.display,
            f"data.split.group_by is {cfg.split.group_by!r}, but no row has that column "
            f"(columns: {seen[:20]})",
            "set data.split.group_by to one of the columns, or map it: columns: {group: <column>}",
        )
    for data, found, _ in group_cols:
        if not found:
            o.warnings.append(
                f"{data.display}: no column {cfg.split.group_by!r} (data.split.group_by), so its rows "
                "are split one by one, not by group"
            )
    o.steps.append(("read", o.read - o.quarantine.counts["read"]))
    o.steps.append(("format", len(records)))
    if cfg.system_prompt and fmt == "chat":
        for r in records:
            if r.messages and r.messages[0]["role"] != "system":
                r.messages.insert(0, {"role": "system", "content": cfg.system_prompt})
    return records, allowed


def _files(o: rep.Outcome) -> str:
    """The sources as the user named them, for errors about the data as a whole."""
    return ", ".join(dict.fromkeys(str(x["location"]) for x in o.sources)) or "data.sources"


def _has_group_column(data: SourceData, group_by: str, mapped: str) -> tuple[SourceData, bool, list[str]]:
    """Whether any row of the source has the ``group_by`` column (or the column ``group`` maps to)."""
    if data.columns is not None:
        return data, group_by in data.columns or mapped in data.columns, sorted(data.columns)
    rows = [r.row for r in data.rows if r.problem is None and r.row is not None]
    found = any(group_by in row or mapped in row for row in rows)
    return data, found, sorted({k for row in rows[:50] for k in row})


def _note_skipped(data: SourceData, o: rep.Outcome) -> None:
    """Files a text folder did not read as rows (they are quarantined, step read): for the report."""
    n = sum(len(v) for v in data.skipped.values())
    for reason, files in data.skipped.items():
        entry = o.skipped.setdefault(reason, {"count": 0, "examples": []})
        entry["count"] += len(files)
        entry["examples"].extend(files[: max(0, 5 - len(entry["examples"]))])
    o.hidden += data.hidden
    if n:
        parts = ", ".join(f"{len(v)} {reason}" for reason, v in data.skipped.items())
        o.warnings.append(f"{data.display}: {n} file(s) skipped ({parts}); they are in quarantine.jsonl")


def _check_listed_labels(
    cfg: DataConfig, ctx: CleanContext, records: list[Record], fmt: str, o: rep.Outcome
) -> None:
    """Every label in ``data.labels`` must occur in the data: one that never does is a typo or a
    differently written name, and would leave the classifier without that class."""
    if cfg.labels is None or fmt != "labelled":
        return
    seen: Counter[str] = ctx.stats.get("labels_seen") or Counter(
        p for r in records for p in label_parts(r.label)
    )
    if not seen:
        return  # numeric targets, or no rows left: nothing to compare (the split says so)
    to_allowed = allowed_normaliser(cfg.clean.labels)
    missing = [x for x in cfg.labels if to_allowed(x) not in seen]
    if missing:
        shown = ", ".join(
            repr(x) + (f" (read as {to_allowed(x)!r})" if to_allowed(x) != x else "") for x in missing
        )
        raise DataError(
            "data.labels",
            f"{shown} never occur(s) in {_files(o)}; the labels it has are {sorted(seen)[:30]}",
            "fix the name in data.labels (labels are compared after NFKC, spaces"
            + (" and lower-casing" if cfg.clean.labels.lowercase and cfg.clean.labels.enabled else "")
            + "), remove it, or rename the data's label to it with clean.labels.map",
        )


# More distinct labels than this, and than half the rows, means the label column holds free text.
MAX_DISTINCT_LABELS = 50


def _check_label_shape(records: list[Record], recipe: Recipe, task: Task, o: rep.Outcome) -> None:
    """Labels a classifier cannot use: one class only, or a distinct label on nearly every row."""
    if task.data_format != "labelled" or not task.has_labels or not records:
        return
    names = Counter(p for r in records for p in label_parts(r.label))
    if len(names) == 1:
        (only,) = names
        raise DataError(
            _files(o),
            f"every row left after cleaning ({len(records)}) has the label {only!r}: a classifier "
            "needs at least two labels",
            "add rows of the other label(s); check data.labels, clean.labels.map and the label column",
        )
    for origin, src in enumerate(recipe.data.sources):
        labels = [r.label for r in records if r.origin == origin and isinstance(r.label, str)]
        distinct = len(set(labels))
        if distinct > MAX_DISTINCT_LABELS and distinct > len(labels) / 2:
            name = o.sources[origin]["location"] if origin < len(o.sources) else _files(o)
            cols = o.columns.get(origin, src.columns)
            mapping = f"label <- {cols.get('label', 'label')!r}, text <- {cols.get('text', 'text')!r}"
            raise DataError(
                str(name),
                f"{distinct} distinct labels in {len(labels)} rows: the label column looks like free "
                f"text, not class names (column mapping: {mapping})",
                "map label to the column that holds the class: columns: {label: <column>}",
            )


def _deduplicate(
    records: list[Record], cfg: DataConfig, fmt: str, o: rep.Outcome
) -> tuple[list[Record], NearDup | None]:
    reject, n_ex = o.quarantine.add, cfg.report.examples
    conflicts = cfg.clean.conflicts if fmt == "labelled" else "keep"
    records, o.conflict_groups = resolve_conflicts(records, conflicts, reject)
    o.steps.append(("conflicts", len(records)))
    if cfg.dedup.exact:
        records = exact_dedup(records, reject, o.dups, n_ex)
        o.steps.append(("exact_dedup", len(records)))
    if not (cfg.dedup.near.enabled and records):
        return records, None
    records, near = near_dedup(records, cfg, reject, o.dups, n_ex)
    o.steps.append(("near_dedup", len(records)))
    return records, near


def _together(near: NearDup, kept: list[Record]) -> list[list[int]]:
    """Near-duplicate clusters as positions in ``kept`` (the split keeps each in one split)."""
    pos = {id(r): i for i, r in enumerate(kept)}
    return [
        [pos[id(near.records[m])] for m in members if id(near.records[m]) in pos] for members in near.clusters
    ]


def _check_leakage(
    kept: list[tuple[Record, str]], near: NearDup | None, cfg: DataConfig, o: rep.Outcome
) -> None:
    """Look for near-duplicate pairs across splits, reusing the dedup index when there is one."""
    if cfg.dedup.leakage == "off" or not kept:
        o.leak["skipped"] = True
        return
    if near is not None:
        index, rows = near.index, near.records
    else:
        rows = [r for r, _ in kept]
        index = build_index(rows, cfg)
    where = {id(r): s for r, s in kept}
    o.leak = leakage(index, rows, [where.get(id(r)) for r in rows], cfg.report.examples)
    if o.leak["pairs"] and cfg.dedup.leakage == "error":
        ex = o.leak["examples"][0]
        raise DataError(
            ex["a"],
            f"{o.leak['pairs']} near-duplicate pair(s) straddle splits, e.g. this "
            f"{ex['a_split']} row and {ex['b']} ({ex['b_split']})",
            "enable dedup.near, or set dedup.leakage: warn",
        )


def _check_eval_labels(by_split: dict[str, list[Record]], fmt: str) -> None:
    """A label in an explicit validation/test file that train never shows cannot be learned.

    For a label set each member must appear in train; a number needs no check (any target can be
    predicted).
    """
    if fmt != "labelled":
        return
    train = {p for r in by_split["train"] for p in label_parts(r.label)}
    for s in ("validation", "test"):
        for r in by_split[s]:
            unseen = [p for p in label_parts(r.label) if p not in train]
            if r.pin == s and unseen:
                raise DataError(
                    r.source,
                    f"label {unseen[0]!r} of this {s} row never appears in train "
                    f"(train labels: {sorted(train)})",
                    "add training rows with it, map it with clean.labels.map, or drop the row",
                )


def _apply_weights(
    train: list[Record], cfg: DataConfig, seed: int, reject: Callable[[str, str, str, Any], None]
) -> tuple[list[Record], int]:
    """Source weight w: keep a seeded fraction w of a source's train rows (w < 1) or repeat them (w > 1)."""
    if all(s.weight == 1 for s in cfg.sources):
        return train, 0
    rng = random.Random(seed)
    out: list[Record] = []
    copies = 0
    for origin, src in enumerate(cfg.sources):
        rows = [r for r in train if r.origin == origin]
        whole, frac = divmod(src.weight, 1.0)
        extra = set(rng.sample(range(len(rows)), round(frac * len(rows))))
        for i, r in enumerate(rows):
            n = int(whole) + (1 if i in extra else 0)
            if n == 0:
                reject(
                    "mix",
                    f"source {src.display_name()!r} has weight {src.weight:g}; this train row was "
                    "left out of the mix",
                    r.source,
                    r.raw,
                )
                continue
            out.extend([r] * n)
            copies += n - 1
    return out, copies


def _output_row(rec: Record, fmt: str, cfg: DataConfig) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": rec.messages} if fmt == "chat" else {"text": rec.text}
    if rec.label is not None and fmt == "labelled":
        row["label"] = list(rec.label) if isinstance(rec.label, tuple) else rec.label  # a set: a JSON list
    row["source"] = rec.source
    if cfg.split.group_by:
        row["group"] = rec.group
    for k, v in rec.extra.items():
        row.setdefault(k, v)
    return row


def _length_counter(cfg: DataConfig, ctx: CleanContext) -> tuple[str, Callable[[str], int]]:
    unit = cfg.report.length_unit
    if unit == "tokens" or (unit == "auto" and ctx.tokenizer_loaded):
        return "tokens", ctx.count_tokens
    return "words", rep.word_count
