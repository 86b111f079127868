"""`tunelab serve` on loopback, called with the official openai client (tiny runs trained in the session)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from tests.integration.conftest import served_app

from tunelab.serve.server import BackgroundServer

KEY = "sk-test-key"


@pytest.fixture(scope="module")
def sft_server(sft_exported, tmp_path_factory):
    _, root = sft_exported
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# one key per line\n{KEY}\n")
    app, served = served_app(root, api_keys_file=str(keys), max_body_bytes=4096, max_tokens=64)
    with BackgroundServer(app) as srv:
        yield srv, served


@pytest.fixture(scope="module")
def cls_server(cls_exported):
    _, root = cls_exported
    app, served = served_app(root)
    with BackgroundServer(app) as srv:
        yield srv, served


def _client(srv, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=60)


def _generated(root: Path) -> list[dict]:
    return [json.loads(x) for x in (root / "generate" / "samples.jsonl").read_text().splitlines()]


def test_chat_stream_completions_and_models_with_the_openai_client(sft_server, sft_exported):
    srv, served = sft_server
    _, root = sft_exported
    client = _client(srv)
    listed = client.models.list().data
    assert [m.id for m in listed] == [served.model_id]
    card = listed[0].model_extra["tunelab"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert card["run_id"] == manifest["stages"]["train"]["run_id"]
    assert card["evaluation"]["perplexity"]["value"] > 1  # the run's headline figure
    # the greedy answer is the one the generate stage wrote for the same prompt (temperature 0)
    for row in _generated(root)[:3]:
        messages = [{"role": "user", "content": row["prompt"]}]
        answer = client.chat.completions.create(
            model=served.model_id, messages=messages, temperature=0, max_tokens=8
        )
        assert answer.choices[0].message.content == row["samples"][0]["text"]
        assert answer.choices[0].finish_reason == row["samples"][0]["finish_reason"]
        assert answer.usage.completion_tokens == row["samples"][0]["n_tokens"]
        # streamed: role first, pieces that join up to the same answer, finish_reason last, usage, [DONE]
        chunks = list(
            client.chat.completions.create(
                model=served.model_id,
                messages=messages,
                temperature=0,
                max_tokens=8,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == answer.choices[0].message.content
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finishes[-1] == answer.choices[0].finish_reason and not any(finishes[:-1])
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == answer.usage.total_tokens
    plain = list(
        client.chat.completions.create(
            model=served.model_id, messages=messages, max_tokens=4, temperature=0, stream=True
        )
    )
    assert all(c.usage is None for c in plain)  # no usage unless asked for
    raw = httpx.post(
        f"{srv.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"model": served.model_id, "messages": messages, "max_tokens": 3, "stream": True},
    )
    assert raw.text.rstrip().endswith("data: [DONE]")
    done = client.completions.create(
        model=served.model_id, prompt="hello", max_tokens=5, n=2, temperature=0.8, seed=3
    )
    assert [c.index for c in done.choices] == [0, 1] and done.usage.completion_tokens >= 2


def test_embeddings_and_classify_match_the_evaluate_stage(cls_server, cls_exported):
    srv, served = cls_server
    _, root = cls_exported
    client = _client(srv, key="unused")  # no key configured: every route is open on loopback
    rows = [json.loads(x) for x in (root / "metrics" / "predictions.jsonl").read_text().splitlines()][:12]
    texts = [r["text"] for r in rows]
    got = client.embeddings.create(model=served.model_id, input=texts[:3])  # base64 on the wire (default)
    floats = httpx.post(
        f"{srv.base_url}/embeddings",
        json={"model": served.model_id, "input": texts[:3], "encoding_format": "float"},
    ).json()
    vectors = np.array([d.embedding for d in got.data])
    assert vectors.shape == (3, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors, [d["embedding"] for d in floats["data"]], atol=1e-6)
    assert got.usage.prompt_tokens > 3
    answer = httpx.post(f"{srv.base_url}/classify", json={"input": texts}).json()
    for row, item in zip(rows, answer["data"], strict=True):
        assert item["label"] == row["predicted"]
        assert abs(item["probabilities"][row["predicted"]] - row["probability"]) < 1e-5
        assert abs(sum(item["probabilities"].values()) - 1) < 1e-5
    with pytest.raises(openai.BadRequestError):  # a classifier does not chat
        client.chat.completions.create(model=served.model_id, messages=[{"role": "user", "content": "hi"}])


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"]
    return body["error"]


def test_errors_are_openai_bodies_and_never_5xx(sft_server):
    srv, served = sft_server
    url, auth = f"{srv.base_url}/chat/completions", {"Authorization": f"Bearer {KEY}"}
    hello = {"model": served.model_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    bad_json = httpx.post(url, headers={**auth, "Content-Type": "application/json"}, content=b'{"model": ')
    assert bad_json.status_code == 400 and _error(bad_json)["code"] == "invalid_json"
    no_key = httpx.post(url, json=hello)
    assert no_key.status_code == 401 and _error(no_key)["type"] == "authentication_error"
    assert httpx.get(srv.base_url.removesuffix("/v1") + "/healthz").status_code == 200  # open route
    with pytest.raises(openai.AuthenticationError):
        _client(srv, key="sk-wrong").models.list()
    client = _client(srv)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="nope", messages=hello["messages"])
    assert unknown.value.body["code"] == "model_not_found"
    huge = httpx.post(
        url, headers=auth, json={**hello, "messages": [{"role": "user", "content": "x" * 8000}]}
    )
    assert huge.status_code == 413 and _error(huge)["code"] == "body_too_large"
    with pytest.raises(openai.BadRequestError) as long_prompt:
        client.chat.completions.create(
            model=served.model_id, messages=[{"role": "user", "content": "the film " * 300}]
        )
    assert long_prompt.value.body["code"] == "context_length_exceeded"
    for body, param in (
        ({**hello, "max_tokens": 10_000}, "max_tokens"),
        ({**hello, "n": 99}, "n"),
        ({**hello, "temperature": 9}, "temperature"),
    ):
        answer = httpx.post(url, headers=auth, json=body)
        assert answer.status_code == 400 and _error(answer)["param"] == param
    missing = httpx.post(url, headers=auth, json={"model": served.model_id})
    assert missing.status_code == 400 and _error(missing)["param"] == "messages"


def test_full_queue_answers_429_with_retry_after(sft_exported):
    _, root = sft_exported
    app, served = served_app(root, queue_size=1, max_batch_size=1, batch_wait_ms=0, max_tokens=512)
    with BackgroundServer(app) as srv:
        client = _client(srv)
        started = threading.Barrier(6)

        def call(_):
            started.wait(timeout=10)
            try:
                client.completions.create(
                    model=served.model_id, prompt="the film", max_tokens=200, temperature=1.0
                )
                return 200
            except openai.RateLimitError as exc:
                assert exc.response.headers["retry-after"] == "1" and exc.body["code"] == "queue_full"
                return 429

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(call, range(6), timeout=120))
    assert 429 in codes and 200 in codes


def test_concurrent_greedy_answers_equal_one_at_a_time(sft_server, sft_exported):
    srv, served = sft_server
    client = _client(srv)
    prompts = [
        "hello",
        "what is the capital of france",
        "tell me a joke",
        "bye",
        "who are you",
        "the film was",
        "why",
        "ok so",
    ]

    def ask(prompt: str):
        got = client.chat.completions.create(
            model=served.model_id,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=12,
        )
        return got.choices[0].message.content, got.usage.completion_tokens

    alone = [ask(p) for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, prompts, timeout=120))
    assert together == alone
    metrics = httpx.get(
        srv.base_url.removesuffix("/v1") + "/metrics", headers={"Authorization": f"Bearer {KEY}"}
    ).text
    batched = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("tunelab_batch_size_bucket") and 'le="1.0"' not in line and "+Inf" not in line
    )
    assert batched > 0  # some requests really ran together


def test_bounded_load_test_loses_nothing(sft_server):
    srv, served = sft_server
    n, concurrency = 300, 8
    statuses, latencies = [], []
    lock = threading.Lock()
    body = {"model": served.model_id, "max_tokens": 4, "temperature": 0}

    def one(i: int) -> None:
        began = time.perf_counter()
        messages = [{"role": "user", "content": f"question number {i}"}]
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as http:
            r = http.post(f"{srv.base_url}/chat/completions", json={**body, "messages": messages})
        with lock:
            statuses.append(r.status_code)
            latencies.append(time.perf_counter() - began)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n), timeout=240))
    assert len(statuses) == n and set(statuses) == {200}  # no 5xx, no 429, nothing lost
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"\nload test: {n} chat requests at concurrency {concurrency}: p50 {p50:.3f} s, p95 {p95:.3f} s")


def test_llama_cpp_engine_answers_like_the_default_engine(sft_server, sft_exported):
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")
    srv, served = sft_server
    _, root = sft_exported
    app, cpp = served_app(root, engine="llama.cpp", gguf=str(root / "export" / "gguf" / "model-f16.gguf"))
    assert app.state.tunelab.engine.name == "llama.cpp"
    with BackgroundServer(app) as other:
        for prompt in ["hello", "tell me a joke", "who are you"]:
            messages = [{"role": "user", "content": prompt}]
            ask = {"messages": messages, "temperature": 0, "max_tokens": 8}
            ours = _client(srv).chat.completions.create(model=served.model_id, **ask)
            theirs = _client(other, key="unused").chat.completions.create(model=cpp.model_id, **ask)
            assert theirs.choices[0].message.content == ours.choices[0].message.content
            assert theirs.usage == ours.usage
            streamed = _client(other, key="unused").chat.completions.create(
                model=cpp.model_id, stream=True, **ask
            )
            text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
            assert text == ours.choices[0].message.content
