"""Quality ablation on Rotten Tomatoes: the quickstart, then one quality feature added at a time.

Every row is a full tunelab run (data, train, evaluate) in its own process on the same splits; it
prints test accuracy with its bootstrap interval, the TF-IDF baseline's accuracy on the same rows and
the training seconds (``metrics/train_summary.json``: training steps and validations, no loading).
The last row is ``configs/quality.yaml``.

    python benchmarks/quality_ablation.py [--rows N] [--steps 0,4] [--json PATH]

``--rows`` keeps the first N train rows (a quick look; the figures of record use all of them).
``--steps`` runs only the rows with these indices (0 = the quickstart, 4 = quality.yaml); each still
carries the overrides of every row before it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

QUICKSTART = "configs/quickstart.yaml"
# (label, overrides added on top of the row before): the last row equals configs/quality.yaml
STEPS: list[tuple[str, list[str]]] = [
    ("quickstart (1 epoch, CLS head)", []),
    ("+ mean pooling", ["model.head.type=linear", "model.head.pooling=mean"]),
    (
        "+ 4 epochs, early stopping, lr 1e-4",
        [
            "train.epochs=4",
            "train.learning_rate=1.0e-4",
            "train.eval_every=134",
            'train.strategies=[{"name": "early_stopping", "patience": 3}]',
        ],
    ),
    (
        "+ layer-wise lr decay 0.8",
        [
            'train.strategies=[{"name": "layerwise_lr", "decay": 0.8}, '
            '{"name": "early_stopping", "patience": 3}]'
        ],
    ),
    ("+ label smoothing 0.1 (= quality.yaml)", ['train.loss={"name": "label_smoothing", "smoothing": 0.1}']),
]


def run_one(workdir: Path, name: str, overrides: list[str], rows: int | None) -> dict:
    """One full run in a child process; its figures from the run directory."""
    base = [f"run.output_dir={workdir}", f"run.name={name}", "stages=[data, train, evaluate]"]
    if rows:
        base.append(f"data.max_rows={rows}")
    cmd = [sys.executable, "-m", "tunelab.cli.main", "run", QUICKSTART, *base, *overrides]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    run_dir = workdir / name
    ev = json.loads((run_dir / "metrics/eval.json").read_text())
    comp = json.loads((run_dir / "metrics/comparison.json").read_text())
    summary = json.loads((run_dir / "metrics/train_summary.json").read_text())
    baseline = (comp.get("metrics", {}).get("accuracy") or {}).get("baseline")
    cal = ev.get("calibration") or {}
    return {
        "accuracy": ev["accuracy"],
        "ece_raw": (cal.get("before") or {}).get("ece"),
        "ece": ev.get("ece"),  # of the calibrated probabilities (temperature scaling, train.calibration)
        "temperature": cal.get("temperature"),
        "baseline_accuracy": baseline["value"] if isinstance(baseline, dict) else baseline,
        "train_seconds": summary["seconds"],
        "steps": summary["steps"],
        "precision": summary["precision"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--steps", default=None, help="comma-separated row indices to run (default: all)")
    args = ap.parse_args()
    chosen = {int(i) for i in args.steps.split(",")} if args.steps else set(range(len(STEPS)))
    table, overrides = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, extra) in enumerate(STEPS):
            overrides = [o for o in overrides if o.split("=")[0] not in {e.split("=")[0] for e in extra}]
            overrides += extra
            if i not in chosen:
                continue
            print(f"[{i + 1}/{len(STEPS)}] {label} ...", file=sys.stderr, flush=True)
            table.append({"feature": label, **run_one(Path(tmp), f"row{i}", overrides, args.rows)})
    print(f"\n{'feature':<42} {'test accuracy':<26} {'baseline':>9} {'ECE raw -> T':>15} {'train s':>8}")
    for r in table:
        if "error" in r:
            print(f"{r['feature']:<42} failed: {r['error']}")
            continue
        a = r["accuracy"]
        acc = f"{a['value']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"
        base = f"{r['baseline_accuracy']:.3f}" if r["baseline_accuracy"] is not None else "-"
        ece = f"{r['ece_raw']:.3f} -> {r['ece']:.3f}" if r["ece_raw"] is not None else "-"
        print(f"{r['feature']:<42} {acc:<26} {base:>9} {ece:>15} {r['train_seconds']:>8.0f}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
