"""The run directory's atomic writes: a failed or killed write never leaves an output that looks whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tunelab.runs import RunDir, atomic_dir, atomic_write_text


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("crash half-way")
    assert not target.exists() and list(tmp_path.iterdir()) == []  # no temporary folder left either

    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    assert (target / "weights").read_text() == "v1"

    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v2-partial")
        raise RuntimeError("crash while replacing")
    assert (target / "weights").read_text() == "v1"  # the old output survives a failed rewrite
    assert _visible(tmp_path) == ["model"]

    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2" and _visible(tmp_path) == ["model"]


def test_a_kill_mid_write_leaves_only_a_hidden_temporary(tmp_path):
    """SIGKILL inside atomic_dir / atomic_write_text: the target is the old one or absent."""
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from tunelab.runs import atomic_dir
        with atomic_dir(Path({str(tmp_path / "model")!r})) as tmp:
            (tmp / "part").write_text("half")
            Path({str(tmp_path / "ready")!r}).write_text("")
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "writer did not start"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "model").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ready"]
    assert leftovers and all(n.startswith(".model.") and n.endswith(".tmp") for n in leftovers)


def test_atomic_write_text_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "eval.json"
    atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and _visible(tmp_path) == ["eval.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # the temporary was removed


def test_stage_record_done_failed_and_not_written_off_rank_zero(tmp_path):
    run_dir = RunDir(tmp_path)
    with run_dir.stage("x", "fp1") as info:
        info["summary"] = {"n": 1}
    rec = run_dir.stage_record("x")
    assert rec["status"] == "done" and rec["fingerprint"] == "fp1" and rec["summary"] == {"n": 1}
    assert run_dir.is_done("x", "fp1") and not run_dir.is_done("x", "fp2")
    with pytest.raises(ValueError), run_dir.stage("x", "fp2"):
        raise ValueError("boom")
    rec = run_dir.stage_record("x")
    assert rec["status"] == "failed" and "ValueError: boom" in rec["error"] and not run_dir.is_done("x")
    with run_dir.stage("y", "fp", write=False):
        pass
    assert run_dir.stage_record("y") is None
