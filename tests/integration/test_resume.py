"""SIGKILL a training process mid-run, resume it, and get the same result as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

# Same machine, same thread count, same seed: CPU kernels are deterministic, so we expect
# bit-identical results; the tolerance only absorbs float formatting in JSON.
TOLERANCE = 1e-6


def _tunelab(*args: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tunelab.cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _recipe(tiny_bert: Path, data: Path, out: Path, name: str) -> Path:
    raw = classification_recipe(tiny_bert, data, out, epochs=10, eval_every=30, save_every=15, log_every=5)
    raw["run"]["name"] = name
    path = out / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]


def test_killed_then_resumed_matches_uninterrupted(tiny_bert, tmp_path):
    data = write_jsonl(tmp_path / "reviews.jsonl", sentiment_rows(240))
    straight = _recipe(tiny_bert, data, tmp_path, "straight")
    killed = _recipe(tiny_bert, data, tmp_path, "killed")

    _finish(_tunelab("data", str(straight)))
    _finish(_tunelab("train", str(straight)))

    _finish(_tunelab("data", str(killed)))
    proc = _tunelab("train", str(killed))
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 240
    while not list(ckpts.glob("step-*/trainer_state.json")):
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model" / "tunelab_model.json").exists(), "no final model after a kill"
    state = json.loads(next(iter(sorted(ckpts.glob("step-*")))).joinpath("trainer_state.json").read_text())[
        "trainer"
    ]
    assert 0 < state["global_step"] < 150

    _finish(_tunelab("train", str(killed), "--resume"))

    a = json.loads((tmp_path / "straight/metrics/train_summary.json").read_text())
    b = json.loads((tmp_path / "killed/metrics/train_summary.json").read_text())
    assert b["resumed_from_step"] is not None and b["resumed_from_step"] > 0
    assert a["steps"] == b["steps"]
    assert a["best_metric"] == b["best_metric"]
    for k, v in a["final_validation"].items():
        assert abs(v - b["final_validation"][k]) <= TOLERANCE, k
    wa = load_file(str(tmp_path / "straight/model/model.safetensors"))
    wb = load_file(str(tmp_path / "killed/model/model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=TOLERANCE, rtol=0)
    la = [json.loads(x) for x in (tmp_path / "straight/metrics/train_log.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "killed/metrics/train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in la] == [e["step"] for e in lb], "the log has no gaps or repeats"
