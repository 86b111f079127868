"""``accelerate launch --num_processes 2`` on CPU (gloo) follows the single-process loss curve.

accelerate's `--multi_gpu` launcher is torchrun; with no GPU the processes join over gloo on CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

# Two processes average two half-batch gradients where one process takes the mean over the whole
# batch: the same number up to float summation order, so the curves agree to ~1e-5; we allow 1e-3.
TOLERANCE = 1e-3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_dropout_copy(model_dir: Path, target: Path) -> Path:
    """Dropout draws differ between one and two processes; without it the runs are comparable."""
    shutil.copytree(model_dir, target)
    cfg = json.loads((target / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (target / "config.json").write_text(json.dumps(cfg))
    return target


def _losses(run: Path) -> list[float]:
    log = [json.loads(x) for x in (run / "metrics/train_log.jsonl").read_text().splitlines()]
    return [e["loss"] for e in log if "loss" in e]


def _launch(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    return subprocess.run(
        [
            accelerate,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(_free_port()),
            "-m",
            "tunelab.cli.main",
            *args,
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(
    shutil.which("accelerate") is None and not Path(sys.executable).with_name("accelerate").exists(),
    reason="accelerate CLI not installed",
)
def test_two_cpu_processes_match_one(tiny_bert, tmp_path):
    model = _no_dropout_copy(tiny_bert, tmp_path / "model")
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(240))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    paths = {}
    for name, per_device in (("single", 16), ("ddp", 8)):
        raw = classification_recipe(model, data, tmp_path, epochs=2, log_every=1, batch_size=per_device)
        raw["run"]["name"] = name
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(raw))
        subprocess.run(
            [sys.executable, "-m", "tunelab.cli.main", "data", str(paths[name])],
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [sys.executable, "-m", "tunelab.cli.main", "train", str(paths["single"])],
        env=env,
        check=True,
        capture_output=True,
    )
    out = _launch(["train", str(paths["ddp"])], env, Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-3000:]
    single, ddp = _losses(tmp_path / "single"), _losses(tmp_path / "ddp")
    assert len(single) == len(ddp) > 10
    for step, (a, b) in enumerate(zip(single, ddp, strict=True), start=1):
        assert abs(a - b) <= TOLERANCE * max(1.0, abs(a)), f"step {step}: {a} vs {b}"
    assert (tmp_path / "ddp/model/model.safetensors").is_file()


@pytest.mark.skipif(
    shutil.which("accelerate") is None and not Path(sys.executable).with_name("accelerate").exists(),
    reason="accelerate CLI not installed",
)
def test_under_two_processes_only_rank_zero_writes_the_manifest(tmp_path):
    repo = Path(__file__).parents[2]
    log = tmp_path / "writes.log"
    raw = {
        "plugins": ["tests.plugins.rank_stages"],
        "run": {"name": "ranks", "output_dir": str(tmp_path)},
        "data": {"sources": [{"path": str(tmp_path / "unused.jsonl")}]},
        "stages": ["prepare", "everywhere"],
    }
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TUNELAB_TEST_LOG": str(log),
        "PYTHONPATH": str(repo),
    }
    out = _launch(["run", str(recipe)], env, repo)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "ranks"
    assert sorted(p.name for p in run.glob("*-rank*")) == [
        "everywhere-rank0",
        "everywhere-rank1",
        "prepare-rank0",
    ]
    writers = log.read_text().split()
    assert writers and set(writers) == {"0"}  # rank 1 never wrote the manifest
    manifest = json.loads((run / "manifest.json").read_text())
    assert {k: v["status"] for k, v in manifest["stages"].items()} == {
        "prepare": "done",
        "everywhere": "done",
    }
    assert manifest["stages"]["everywhere"]["summary"] == {"rank": 0}  # the record is rank 0's

    log.unlink()
    again = _launch(["run", str(recipe)], env, repo)  # current: both ranks skip both stages
    assert again.returncode == 0, again.stderr[-3000:]
    assert set(log.read_text().split()) <= {"0"}
    assert json.loads((run / "manifest.json").read_text())["stages"] == manifest["stages"]
