"""Starting the server: checks that fail fast (keys, address, port), the model, the engine, uvicorn.

:func:`serve_forever` is ``tunelab serve``; :class:`BackgroundServer` runs the same app on a
thread (tests and benchmarks), bound to loopback on a free port, and waits, bounded, until it
answers.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tunelab.config.serve import ServeConfig
from tunelab.serve.security import is_loopback, load_keys
from tunelab.serve.source import Served, load_served

log = logging.getLogger("tunelab")


def check_address(host: str, port: int) -> None:
    """Fail now, with a clear message, if ``host:port`` cannot be bound (in use, or not ours)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"port {port} on {host} is in use: stop what holds it or pick another with --port"
                ) from None
            raise ValueError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None


def build(target: Path | str, cfg: ServeConfig, served: Served | None = None):
    """(app, served, keys) for ``target``, after the checks that need no model."""
    keys = load_keys(cfg.api_keys_file, cfg.api_key_env)
    if not keys and not is_loopback(cfg.host):
        raise ValueError(
            f"serve.host={cfg.host} exposes the server beyond this machine: give an API key "
            f"(serve.api_keys_file or the {cfg.api_key_env} environment variable) first"
        )
    check_address(cfg.host, cfg.port)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    served = served or load_served(Path(target), cfg.model_id)
    engine = make_engine(served, cfg)
    from tunelab.serve.app import create_app

    return create_app(served, engine, cfg, keys), served, keys


def make_engine(served: Served, cfg: ServeConfig) -> Any:
    if cfg.engine == "llama.cpp":
        from tunelab.serve.llamacpp import LlamaCppEngine

        return LlamaCppEngine.for_served(served, cfg)
    from tunelab.serve.engine import TransformersEngine

    precision = cfg.precision
    if precision == "auto":
        import torch

        from tunelab.train.precision import choose_precision

        precision = choose_precision("auto", torch.device("cpu"))
    return TransformersEngine(served, precision=precision)


def _uvicorn(app, host: str, port: int):
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    return uvicorn.Server(config)


def serve_forever(target: Path | str, cfg: ServeConfig, say=print) -> None:
    """``tunelab serve``: load, print where it listens, run until Ctrl-C."""
    app, served, keys = build(target, cfg)
    server = _uvicorn(app, cfg.host, cfg.port)
    engine = app.state.tunelab.engine.name
    say(f"serving {served.model_id} ({served.kind}, {engine} engine) from {served.source}")
    say(f"  OpenAI base URL: http://{_url_host(cfg.host)}:{cfg.port}/v1 (also /healthz, /metrics)")
    say(f"  API keys: {len(keys)}" if keys else "  no API key set: anyone who can reach the port can use it")
    say("  Ctrl-C stops it")
    server.run()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class BackgroundServer:
    """The app on a daemon thread: ``with BackgroundServer(app) as srv: srv.base_url``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 60.0) -> None:
        self.app, self.host, self.port, self.timeout = app, host, port, start_timeout_s
        self.server = _uvicorn(app, host, port)
        self.thread = threading.Thread(target=self.server.run, name="tunelab-serve", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}/v1"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:  # bounded: a server that never starts is an error, not a hang
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {self.timeout:.0f} s")
            time.sleep(0.05)
        if self.port == 0:
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
