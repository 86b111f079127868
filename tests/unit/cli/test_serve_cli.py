"""`tunelab serve` and `tunelab export` refuse bad input with a clear message before serving anything."""

from __future__ import annotations

import json
import socket

from tunelab.cli.main import main


def _fails(argv, capsys, *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, err
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, flat
    assert "Traceback" not in err
    return flat


def test_a_run_without_a_model(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"stages": {}}))
    _fails(["serve", str(run)], capsys, "has no trained model", "tunelab train")


def test_a_folder_that_is_not_a_model(tmp_path, capsys):
    _fails(["serve", str(tmp_path)], capsys, "neither a run directory", "nor a model folder")
    _fails(["serve", str(tmp_path / "missing")], capsys, "does not exist")


def test_a_port_in_use(tiny_llama, capsys):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        _fails(["serve", str(tiny_llama), "--port", str(port)], capsys, f"port {port}", "in use", "--port")


def test_an_unreadable_key_file_and_an_exposed_host(tiny_llama, tmp_path, capsys, monkeypatch):
    _fails(
        ["serve", str(tiny_llama), "--api-keys-file", str(tmp_path / "nope.txt")],
        capsys,
        "serve.api_keys_file",
        "cannot read",
    )
    empty = tmp_path / "keys.txt"
    empty.write_text("# no keys yet\n")
    _fails(["serve", str(tiny_llama), "--api-keys-file", str(empty)], capsys, "holds no key")
    monkeypatch.delenv("TUNELAB_API_KEYS", raising=False)
    _fails(["serve", str(tiny_llama), "--host", "0.0.0.0"], capsys, "serve.host=0.0.0.0", "API key")
    _fails(["serve", str(tiny_llama), "--port", "99999"], capsys, "serve.port")


def test_export_needs_a_trained_run(tmp_path, capsys):
    _fails(["export", str(tmp_path)], capsys, "not a run directory")
