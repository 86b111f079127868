"""API keys, the body limit, OpenAI error bodies and streamed text that never splits a stop string."""

from __future__ import annotations

import asyncio

import pytest

from tunelab.serve.errors import validation_error
from tunelab.serve.security import BodyLimit, is_loopback, key_ok, load_keys
from tunelab.serve.streaming import safe_prefix


def test_keys_from_a_file_and_the_environment(tmp_path, monkeypatch):
    f = tmp_path / "keys"
    f.write_text("# ops team\nsk-one\n\n  sk-two  \n")
    monkeypatch.setenv("MY_KEYS", "sk-three, sk-one")
    assert load_keys(str(f), "MY_KEYS") == ["sk-one", "sk-two", "sk-three"]
    assert key_ok("Bearer sk-two", ["sk-one", "sk-two"]) and key_ok("bearer sk-one", ["sk-one"])
    assert not key_ok("Bearer sk-nope", ["sk-one"]) and not key_ok(None, ["sk-one"])
    assert not key_ok("sk-one", ["sk-one"]) and not key_ok("Basic sk-one", ["sk-one"])
    assert key_ok(None, [])  # no key configured: open
    with pytest.raises(ValueError, match="cannot read"):
        load_keys(str(tmp_path / "missing"), None)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def _call(limit: int, chunks: list[bytes], declared: int | None = None) -> tuple[int, bytes]:
    seen: dict = {}

    async def app(scope, receive, send):
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0)

    async def send(m):
        sent.append(m)

    headers = [(b"content-length", str(declared).encode())] if declared is not None else []
    asyncio.run(BodyLimit(app, limit)({"type": "http", "headers": headers}, receive, send))
    return sent[0]["status"], seen.get("body", b"")


def test_body_limit_counts_what_arrives_not_what_is_declared():
    assert _call(10, [b"12345", b"678"]) == (200, b"12345678")
    assert _call(10, [b"123456", b"789012"])[0] == 413  # chunked, no Content-Length
    assert _call(10, [b"1"], declared=500)[0] == 413


def test_validation_errors_name_every_field_and_malformed_json():
    err = validation_error(
        [{"loc": ("body", "n"), "msg": "too big"}, {"loc": ("body", "messages"), "msg": "missing"}]
    )
    assert err.status == 400 and err.param == "n" and "messages: missing" in err.message
    bad = validation_error(
        [{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON", "ctx": {"error": "EOF"}}]
    )
    assert bad.code == "invalid_json" and "not valid JSON" in bad.message


@pytest.mark.parametrize(
    ("text", "stops", "ready"),
    [
        ("hello wor", ["world"], "hello "),  # may be the start of the stop string: held back
        ("hello world and", ["world"], "hello "),  # cut at the stop string
        ("plain", [], "plain"),
        ("caf\ufffd", [], "caf"),  # half a character is held back
        ("a\n", ["\n\n"], "a"),
    ],
)
def test_safe_prefix(text, stops, ready):
    assert safe_prefix(text, stops) == ready
