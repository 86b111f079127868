"""API keys and request-size limits.

Keys come from a file (one per line, ``#`` comments) and/or an environment variable (comma
separated); they are compared in constant time and never logged. The body limit is an ASGI
middleware so an oversize upload is refused while it is read, whatever its Content-Length says.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

from tunelab.serve.errors import error_body

OPEN_PATHS = frozenset({"/healthz"})  # the only route that answers without a key


def load_keys(keys_file: str | None, env_var: str | None) -> list[str]:
    """Every configured key; a key file that cannot be read is an error naming it."""
    keys: list[str] = []
    if keys_file:
        path = Path(keys_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"serve.api_keys_file: cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ValueError(f"serve.api_keys_file: {path} is not UTF-8 text (one key per line)") from None
        keys += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if not keys:
            raise ValueError(f"serve.api_keys_file: {path} holds no key (one per line)")
    if env_var and os.environ.get(env_var):
        keys += [k.strip() for k in os.environ[env_var].split(",") if k.strip()]
    return list(dict.fromkeys(keys))


def key_ok(authorization: str | None, keys: list[str]) -> bool:
    """Whether the ``Authorization: Bearer <key>`` header holds one of ``keys`` (constant time)."""
    if not keys:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    given_b = given.strip().encode()
    return any(hmac.compare_digest(given_b, k.encode()) for k in keys)  # no early exit on a match


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets 413 before the route sees it."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(send, self.limit)
        seen = 0
        chunks: list[dict] = []
        while True:  # read the whole body first (bounded by the limit), then replay it to the app
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    return await _too_large(send, self.limit)
                chunks.append(message)
                if not message.get("more_body"):
                    break
            else:
                chunks.append(message)
                break

        async def replay():
            return chunks.pop(0) if chunks else await receive()

        return await self.app(scope, replay, send)


async def _too_large(send, limit: int) -> None:
    body = json.dumps(
        error_body(413, f"the request body is larger than the limit of {limit} bytes", code="body_too_large")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
