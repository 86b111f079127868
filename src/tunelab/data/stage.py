"""The data stage: recipe.data -> <run>/data/{train,validation,test}.jsonl, labels, quarantine, report.

Order: read -> format -> cleaning steps -> conflicting labels -> exact dedup -> near dedup -> split
-> leakage check -> source weights. Every row removed on the way is in quarantine.jsonl, so
``rows read = rows kept + rows quarantined`` (copies made by a source weight above 1 are extra).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

from tunelab.config import Recipe
from tunelab.config.data import SPLITS, DataConfig
from tunelab.data import report as rep
from tunelab.data.clean import CleanContext, build_steps, run_steps
from tunelab.data.dedup import NearDup, build_index, exact_dedup, leakage, near_dedup, resolve_conflicts
from tunelab.data.errors import DataError
from tunelab.data.formats import to_records
from tunelab.data.quarantine import Quarantine
from tunelab.data.records import Record, label_parts
from tunelab.data.report_html import render
from tunelab.data.sources import input_hashes, read_source
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
    return key


def run(recipe: Recipe, run_dir: RunDir, tokenizer: Any = None) -> StageResult:
    """Prepare the run's data. ``tokenizer`` overrides the model's (tests pass a small one)."""
    report = prepare(recipe, run_dir, tokenizer)
    names = [f"{s}.jsonl" for s in SPLITS] + ["quarantine.jsonl", "data_report.json", "data_report.html"]
    if (run_dir.data / "labels.json").exists():
        names.append("labels.json")
    return StageResult("data", metrics=report["summary"], artifacts=[str(run_dir.data / n) for n in names])


def _tokenizer_loader(recipe: Recipe, tokenizer: Any) -> Callable[[], Any]:
    def load() -> Any:
        if tokenizer is not None:
            return tokenizer
        from tunelab.models.resolve import load_tokenizer  # lazy: loading a model tokenizer takes time

        return load_tokenizer(recipe.model)

    return load


def prepare(recipe: Recipe, run_dir: RunDir, tokenizer: Any = None) -> dict[str, Any]:
    """Do the work and write every artifact; return the report."""
    cfg, seed = recipe.data, recipe.run.seed
    task = get_task(recipe.task)
    fmt = task.data_format
    o = rep.Outcome(task=fmt, read=0, quarantine=Quarantine(), by_split={})
    reject = o.quarantine.add

    records, allowed = _read(recipe, task, o)
    ctx = CleanContext(
        task=fmt, allowed_labels=allowed, tokenizer_loader=_tokenizer_loader(recipe, tokenizer)
    )
    clean_steps = build_steps(cfg, ctx)
    records = run_steps(records, clean_steps, reject)
    after = len(records) + sum(o.quarantine.counts[n] for n, _ in clean_steps)
    for name, _ in clean_steps:
        after -= o.quarantine.counts[name]
        o.steps.append((name, after))
    o.stats = ctx.stats

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
        raise DataError(
            "data.sources",
            f"no rows left for train ({len(kept)} kept, {len(o.quarantine)} quarantined)",
            "see data/quarantine.jsonl for why rows were removed",
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
    report = rep.build(o, cfg, seed, unit, counter)
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
    for origin, src in enumerate(cfg.sources):
        data = read_source(src, cfg, seed)
        o.read += len(data.rows)
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
    o.steps.append(("read", o.read - o.quarantine.counts["read"]))
    o.steps.append(("format", len(records)))
    if cfg.system_prompt and fmt == "chat":
        for r in records:
            if r.messages and r.messages[0]["role"] != "system":
                r.messages.insert(0, {"role": "system", "content": cfg.system_prompt})
    return records, allowed


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
