"""SIGKILL a ``tunelab train`` process mid-run, ``tunelab train --resume`` it, and get exactly the result of
an uninterrupted run (every log line, checkpoint, best/ and the model; see also tests/guarantees)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from tests.guarantees.runs_helpers import assert_same_run
from tests.helpers import classification_recipe, sentiment_rows, write_jsonl

# Same machine, same thread count, same seed: CPU kernels are deterministic, so the comparison is
# exact (JSON floats round-trip exactly); only the logged tokens/s, a wall-clock figure, differs.


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

    b = json.loads((tmp_path / "killed/metrics/train_summary.json").read_text())
    assert b["resumed_from_step"] is not None and b["resumed_from_step"] > 0
    assert_same_run(tmp_path / "straight", tmp_path / "killed")
