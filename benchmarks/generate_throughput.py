"""Batched greedy generation against one ``generate`` call per prompt: tokens/s and identical outputs.

Both sides continue the same ``--prompts`` test-split prompts of the quickstart SFT recipe
(chatterbot), rendered with SmolLM2-135M-Instruct's ChatML template, with the base model, greedily,
for at most ``--max-new-tokens`` tokens. The baseline is what a user writes with plain
``transformers``: one ``model.generate`` call per prompt (``do_sample=False``), no padding. The
tunelab side is ``tunelab.models.decoding.generate`` with ``batch_size=8`` (prompts sorted by
length, left-padded, the KV cache), plus batch 16 and 32 as extra rows. Both sides run in this
process on the same model and under the same precision (bf16 autocast when ``choose_precision``
picks it), so the ratio measures batching alone; each side is warmed up once. New tokens count up to
and including the end token; tokens/s is new tokens over wall seconds of the whole call(s). The
greedy outputs are compared token for token; when bf16 flips some, the check (and the timing) is
run again in fp32. ``--synthetic N`` then times ``synthesize_for_run`` for N synthetic rows
(the recipe's synthetic defaults: the creative preset, 64 new tokens) and reports seconds per kept
row; ``--synthetic 0`` skips it. Before each timed part it waits (up to ``--max-wait`` s) until no
pytest process runs, as other work on the same cores skews every figure.

    python benchmarks/generate_throughput.py [--prompts 32] [--max-new-tokens 32] [--precision auto]
        [--synthetic 20] [--workdir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

RECIPE = "configs/sft-quickstart.yaml"
BATCHES, TARGET_BATCH, TARGET = (8, 16, 32), 8, 3.0


def pytest_running() -> bool:
    return subprocess.run(["pgrep", "-f", "pytest"], capture_output=True).returncode == 0


def quiet(part: str, max_wait: float) -> dict[str, Any]:
    """Wait (polling every 20 s, at most ``max_wait`` s) until no pytest process runs."""
    start = time.perf_counter()
    while pytest_running() and time.perf_counter() - start < max_wait:
        time.sleep(20)
    waited, busy = time.perf_counter() - start, pytest_running()
    if busy:
        print(f"[{part}] pytest still running after {waited:.0f} s of waiting: timing anyway", flush=True)
    elif waited >= 1:
        print(f"[{part}] waited {waited:.0f} s for pytest to finish", flush=True)
    return {"waited_s": round(waited, 1), "pytest_at_start": busy, "load_1min_at_start": os.getloadavg()[0]}


def setup(workdir: Path, precision: str):
    """The quickstart recipe's data stage and the base model as the generate stage loads it."""
    from tunelab.config import load_recipe
    from tunelab.generate.model import load_writer
    from tunelab.pipeline import run_stage
    from tunelab.runs import RunDir

    recipe = load_recipe(RECIPE, [f"run.output_dir={workdir}", f"train.precision={precision}"])
    run_stage("data", recipe)
    run_dir = RunDir(recipe.run_dir_path())
    return recipe, run_dir, load_writer(recipe, run_dir, base=True)


def test_prompts(run_dir, tokenizer, n: int) -> list[list[int]]:
    from tunelab.generate.config import PromptConfig
    from tunelab.generate.prompts import pairs, render

    rows = run_dir.split_rows("test")[:n]
    if len(rows) < n:
        raise SystemExit(f"the test split has only {len(rows)} rows; use --prompts {len(rows)}")
    return [render(PromptConfig(), tokenizer, pairs(r)[0]).ids for r in rows]


def baseline(model, tokenizer, prompts: list[list[int]], max_new: int, precision: str) -> dict[str, Any]:
    """One plain ``model.generate`` call per prompt, as a user would write it."""
    import torch

    from tunelab.models.decoding import eos_ids
    from tunelab.models.scoring import autocast_for

    ends, outputs = set(eos_ids(tokenizer)), []
    start = time.perf_counter()
    for p in prompts:
        ids = torch.tensor([p])
        with autocast_for(model, precision):  # a no-op in fp32
            seq = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = seq[0, len(p) :].tolist()
        end = next((k + 1 for k, t in enumerate(new) if t in ends), len(new))  # up to the end token
        outputs.append(new[:end])
    seconds = time.perf_counter() - start
    return {"outputs": outputs, "seconds": seconds, "new_tokens": sum(map(len, outputs))}


def tunelab_side(
    writer, prompts: list[list[int]], max_new: int, batch: int, precision: str
) -> dict[str, Any]:
    from tunelab.generate.config import DecodingConfig
    from tunelab.models.decoding import generate

    cfg = DecodingConfig(temperature=0, max_new_tokens=max_new)
    start = time.perf_counter()
    groups, stats = generate(
        writer.model, writer.tokenizer, prompts, cfg, batch_size=batch, seed=0, precision=precision
    )
    seconds = time.perf_counter() - start
    outputs = [g[0].token_ids for g in groups]
    return {
        "outputs": outputs,
        "seconds": seconds,
        "new_tokens": stats["new_tokens"],
        "generate_seconds": stats["seconds"],
        "batches": stats["batches"],
    }


def compare(writer, prompts, max_new: int, precision: str, batches, max_wait: float) -> list[dict[str, Any]]:
    """Rows of the table for one precision: the baseline, then tunelab at each batch size."""
    tok = writer.tokenizer
    baseline(writer.model, tok, prompts[:1], max_new, precision)  # warm-ups
    tunelab_side(writer, prompts[:TARGET_BATCH], max_new, TARGET_BATCH, precision)
    env = quiet(f"baseline {precision}", max_wait)
    base = baseline(writer.model, tok, prompts, max_new, precision)
    rows = [
        {
            "side": "baseline",
            "batch": 1,
            "precision": precision,
            **env,
            **base,
            "pytest_at_end": pytest_running(),
        }
    ]
    for b in batches:
        env = quiet(f"tunelab batch {b} {precision}", max_wait)
        got = tunelab_side(writer, prompts, max_new, b, precision)
        rows.append(
            {
                "side": "tunelab",
                "batch": b,
                "precision": precision,
                **env,
                **got,
                "pytest_at_end": pytest_running(),
            }
        )
    for r in rows:
        r["tokens_per_s"] = r["new_tokens"] / r["seconds"]
        r["speedup"] = r["tokens_per_s"] / rows[0]["tokens_per_s"]
        diffs = [i for i, (a, b) in enumerate(zip(r["outputs"], base["outputs"], strict=True)) if a != b]
        r["match"], r["differ"], i = len(prompts) - len(diffs), diffs, diffs[0] if diffs else None
        r["first_diff"] = (
            None if i is None else [i, tok.decode(r["outputs"][i]), tok.decode(base["outputs"][i])]
        )
    return rows


def synthetic(recipe, run_dir, writer, n: int, max_wait: float) -> dict[str, Any]:
    """Time ``synthesize_for_run`` for ``n`` rows with the writer already loaded."""
    import tunelab.models.decoding as decoding
    from tunelab.config import load_recipe
    from tunelab.generate.synthesis import synthesize_for_run

    rec = load_recipe(
        RECIPE,
        [
            f"run.output_dir={recipe.run.output_dir}",
            f"train.precision={recipe.train.precision}",
            "generate.synthetic.enabled=true",
            f"generate.synthetic.n={n}",
        ],
    )
    folder = run_dir.path("generate")
    folder.mkdir(parents=True, exist_ok=True)
    gen = {"calls": 0, "seconds": 0.0, "new_tokens": 0}
    real = decoding.generate

    def counted(*a, **kw):  # synthesize_for_run imports generate at call time: count its share
        start = time.perf_counter()
        out = real(*a, **kw)
        gen["calls"] += 1
        gen["seconds"] += time.perf_counter() - start
        gen["new_tokens"] += out[1]["new_tokens"]
        return out

    env = quiet("synthetic", max_wait)
    decoding.generate = counted
    try:
        start = time.perf_counter()
        synthesize_for_run(rec, run_dir, writer, run_dir.split_rows("train"), folder, {})
        seconds = time.perf_counter() - start
    finally:
        decoding.generate = real
    report = json.loads((folder / "synthetic_report.json").read_text())
    sc = rec.section("generate").synthetic
    return {
        **env,
        "pytest_at_end": pytest_running(),
        "seconds": seconds,
        "generation": gen,
        "per_kept_s": seconds / report["kept"] if report["kept"] else None,
        "decoding": sc.decoding.settings(),
        "batch_size": rec.section("generate").batch_size,
        **{
            k: report[k]
            for k in ("requested", "kept", "produced", "rounds", "complete", "reason", "dropped", "per_round")
        },
    }


def print_table(rows: list[dict[str, Any]], n: int) -> None:
    print(
        f"{'side':<10}{'batch':>6}{'precision':>10}{'new tokens':>12}{'seconds':>9}{'tokens/s':>10}"
        f"{'speed-up':>10}{'same greedy':>13}{'pytest':>8}"
    )
    for r in rows:
        busy = "yes" if r["pytest_at_start"] or r["pytest_at_end"] else "no"
        print(
            f"{r['side']:<10}{r['batch']:>6}{r['precision']:>10}{r['new_tokens']:>12,}{r['seconds']:>9.2f}"
            f"{r['tokens_per_s']:>10.1f}{r['speedup']:>9.2f}x{r['match']:>7} of {n:<3}{busy:>8}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32, help="test-split prompts")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    ap.add_argument("--synthetic", type=int, default=20, help="synthetic rows to time (0: skip)")
    ap.add_argument("--max-wait", type=float, default=900.0, help="seconds to wait for pytest to finish")
    ap.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from tunelab.train.precision import cpu_has_fast_bf16

    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        recipe, run_dir, writer = setup(workdir, args.precision)
        prompts = test_prompts(run_dir, writer.tokenizer, args.prompts)
        lengths = sorted(map(len, prompts))
        print(
            f"precision {writer.precision} (asked {args.precision}; CPU fast bf16: "
            f"{'yes' if cpu_has_fast_bf16() else 'no'}), torch threads {torch.get_num_threads()}; "
            f"{len(prompts)} prompts of {lengths[0]}-{lengths[-1]} tokens",
            flush=True,
        )
        rows = compare(writer, prompts, args.max_new_tokens, writer.precision, BATCHES, args.max_wait)
        if writer.precision != "fp32" and any(r["match"] < len(prompts) for r in rows):
            print("bf16 outputs differ between the sides: checking again in fp32", flush=True)
            rows += compare(writer, prompts, args.max_new_tokens, "fp32", (TARGET_BATCH,), args.max_wait)
        synth = synthetic(recipe, run_dir, writer, args.synthetic, args.max_wait) if args.synthetic else None

    n = len(prompts)
    print(
        f"\ngreedy generation, SmolLM2-135M-Instruct (base), {n} chatterbot test prompts, at most "
        f"{args.max_new_tokens} new tokens; baseline: one model.generate call per prompt"
    )
    print_table(rows, n)
    for r in rows:
        if r["first_diff"] is not None:
            i, got, want = r["first_diff"]
            print(
                f"  {r['side']} batch {r['batch']} {r['precision']}, first differing prompt #{i}: "
                f"{got!r} vs baseline {want!r}"
            )
    main_row = next(r for r in rows if r["side"] == "tunelab" and r["batch"] == TARGET_BATCH)
    ok = main_row["speedup"] >= TARGET
    print(
        f"target >= {TARGET:.0f}x at batch {TARGET_BATCH} ({main_row['precision']}): "
        f"{'yes' if ok else 'NO'} ({main_row['speedup']:.2f}x); identical greedy outputs: "
        + "; ".join(
            f"{r['precision']} batch {r['batch']} {r['match']}/{n}" for r in rows if r["side"] == "tunelab"
        )
    )
    if synth:
        g = synth["generation"]
        per = f"{synth['per_kept_s']:.2f} s" if synth["per_kept_s"] else "n/a (nothing kept)"
        print(
            f"\nsynthetic instruction pairs (synthesize_for_run, base model, {writer.precision}, batch "
            f"{synth['batch_size']}, temperature {synth['decoding']['temperature']}, "
            f"max_new_tokens {synth['decoding']['max_new_tokens']}): {synth['kept']} kept of "
            f"{synth['requested']} requested, {synth['produced']} produced in {synth['rounds']} rounds, "
            f"{synth['seconds']:.1f} s: {per} per kept row; kept/produced "
            f"{synth['kept'] / max(1, synth['produced']):.0%}"
        )
        print(
            f"  generation {g['seconds']:.1f} s ({g['calls']} calls, {g['new_tokens']:,} new tokens, "
            f"{g['new_tokens'] / max(g['seconds'], 1e-9):.1f} tokens/s); filters and the rest "
            f"{synth['seconds'] - g['seconds']:.1f} s"
        )
        print(
            f"  dropped: {json.dumps(synth['dropped'])}; per round: "
            + ", ".join(f"{p['kept']}/{p['candidates']}" for p in synth["per_round"])
        )
        print(f"  {synth['reason']}")
    parts = [*rows, *([synth] if synth else [])]
    busy = [p for p in parts if p["pytest_at_start"] or p["pytest_at_end"]]
    print(
        f"\npytest ran during {len(busy)} of {len(parts)} timed parts"
        + (" (those figures are skewed)" if busy else "")
        + f"; 1-min load average now {os.getloadavg()[0]:.2f}"
    )
    if args.json:
        out = {
            "rows": [{k: v for k, v in r.items() if k != "outputs"} for r in rows],
            "synthetic": synth,
            "target_met": ok,
            "prompts": n,
            "max_new_tokens": args.max_new_tokens,
            "fast_bf16": cpu_has_fast_bf16(),
            "threads": torch.get_num_threads(),
        }
        args.json.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
