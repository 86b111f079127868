"""A small classification run with strategies and a non-default loss, and exact comparisons of two runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

from tunelab.config import Recipe, validate_recipe
from tunelab.pipeline import run_stage

EPOCHS, BATCH, EVAL_EVERY, LOG_EVERY = 3, 16, 5, 3
WALL_CLOCK = ("tokens_per_s",)  # the only logged field that measures time, not training


def resume_recipe(tiny_bert: Path, data: Path, out: Path, save_every: int | None = None) -> dict[str, Any]:
    raw = classification_recipe(
        tiny_bert, data, out, epochs=EPOCHS, batch_size=BATCH, eval_every=EVAL_EVERY, log_every=LOG_EVERY,
        keep_checkpoints=100, num_threads=1,
        loss={"name": "focal", "gamma": 1.5},
        strategies=[{"name": "curriculum"}, {"name": "layerwise_lr"}],
    )
    raw["run"]["name"] = "resume"
    if save_every:
        raw["train"]["save_every"] = save_every
    return raw


def prepared_run(tiny_bert: Path, out: Path) -> tuple[Recipe, Path, dict[str, int]]:
    """Run the data stage in ``out``; return the train recipe (also written as ``out/recipe.yaml``),
    the run folder and the schedule: steps per epoch, total steps and a ``save_every`` that puts a
    checkpoint on every epoch boundary and one inside every epoch."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "reviews.jsonl"
    if not data.exists():
        write_jsonl(data, sentiment_rows(240))
    recipe = validate_recipe(resume_recipe(tiny_bert, data, out))
    run_stage("data", recipe)
    n_train = len((recipe.run_dir_path() / "data/train.jsonl").read_text().splitlines())
    spe = math.ceil(n_train / BATCH)
    save_every = next((d for d in (4, 3, 5, 6, 2) if spe % d == 0 and d < spe), spe)
    raw = resume_recipe(tiny_bert, data, out, save_every)
    (out / "recipe.yaml").write_text(yaml.safe_dump(raw))
    sched = {"steps_per_epoch": spe, "total": EPOCHS * spe, "save_every": save_every}
    return validate_recipe(raw), recipe.run_dir_path(), sched


def log_lines(run: Path) -> list[dict[str, Any]]:
    """Every line of ``metrics/train_log.jsonl``, without its wall-clock field."""
    lines = (run / "metrics/train_log.jsonl").read_text().splitlines()
    return [_no_clock(json.loads(line)) for line in lines]


def _no_clock(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in WALL_CLOCK}


def assert_tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert set(a) == set(b), what
    for name, t in a.items():
        assert torch.equal(t, b[name]), f"{what}: {name} differs"


def _assert_nested_equal(a: Any, b: Any, what: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), what
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), what
        for k in a:
            _assert_nested_equal(a[k], b[k], f"{what}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_nested_equal(x, y, f"{what}[{i}]")
    else:
        assert a == b, f"{what}: {a!r} != {b!r}"


def checkpoint_steps(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("step-*"))


def assert_same_weights(straight: Path, other: Path) -> None:
    """``other`` trained exactly as ``straight``: every checkpoint's weights and optimiser state (with the
    torch RNG streams), ``best/``, the saved model and the summary's figures, with exact equality."""
    steps = checkpoint_steps(straight)
    assert checkpoint_steps(other) == steps
    for step in steps:
        a, b = straight / "checkpoints" / step, other / "checkpoints" / step
        weights = "trainable.safetensors"
        assert_tensors_equal(load_file(str(a / weights)), load_file(str(b / weights)), step)
        _assert_nested_equal(torch.load(a / "optimizer.pt", weights_only=True),
                             torch.load(b / "optimizer.pt", weights_only=True), f"{step}/optimizer.pt")
    best = "checkpoints/best/trainable.safetensors"
    assert_tensors_equal(load_file(str(straight / best)), load_file(str(other / best)), "best/")
    model = "model/model.safetensors"
    assert_tensors_equal(load_file(str(straight / model)), load_file(str(other / model)), "model/")
    sa, sb = (json.loads((r / "metrics/train_summary.json").read_text()) for r in (straight, other))
    for key in ("best_metric", "final_validation", "steps", "stopped"):
        assert sa[key] == sb[key], key


def assert_same_log(straight: Path, other: Path) -> None:
    """Every line of ``train_log.jsonl`` and every checkpoint's trainer state are those of ``straight``.

    The global python RNG state is left out of the comparison: code outside training (a module imported
    on first use) draws from it depending on what the process did before, so a fresh subprocess and the
    test process differ there although training never uses it; ``test_a_checkpoint_restores_every_rng``
    checks its save and restore directly."""
    assert log_lines(other) == log_lines(straight), "metrics/train_log.jsonl differs"
    for step in checkpoint_steps(straight):
        sa, sb = (json.loads((r / "checkpoints" / step / "trainer_state.json").read_text())
                  for r in (straight, other))
        for s in (sa, sb):
            s["trainer"]["history"] = [_no_clock(h) for h in s["trainer"]["history"]]
            s["rng"].pop("python")
        assert sa == sb, f"{step}/trainer_state.json differs"


def assert_same_run(straight: Path, other: Path) -> None:
    assert_same_weights(straight, other)
    assert_same_log(straight, other)
