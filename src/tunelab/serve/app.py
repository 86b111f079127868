"""The FastAPI app: OpenAI-compatible routes over one served model, with keys, limits and metrics.

Routes: ``/v1/chat/completions`` and ``/v1/completions`` (causal models, see
:mod:`tunelab.serve.generation`), ``/v1/embeddings`` and ``/v1/classify`` (encoders and
classifiers), ``/v1/models``, ``/healthz`` (no key) and ``/metrics`` (Prometheus).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tunelab.config.serve import ServeConfig
from tunelab.serve import errors
from tunelab.serve.batching import Batcher, QueueFull, Work
from tunelab.serve.errors import APIError
from tunelab.serve.metrics import ServerMetrics
from tunelab.serve.schemas import ClassifyRequest, EmbeddingRequest
from tunelab.serve.security import OPEN_PATHS, BodyLimit, key_ok
from tunelab.serve.source import Served

POLL_S = 0.2  # how often a waiting request checks that its client is still there


@dataclass
class ServerState:
    served: Served
    engine: Any
    cfg: ServeConfig
    batcher: Batcher
    metrics: ServerMetrics

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.served.model_id:
            raise APIError(
                404,
                f"the model {name!r} does not exist here; this server serves {self.served.model_id!r}",
                param="model",
                code="model_not_found",
            )

    def require(self, *kinds: str, route: str) -> None:
        if self.served.kind not in kinds:
            uses = {
                "causal": "/v1/chat/completions and /v1/completions",
                "classifier": "/v1/classify and /v1/embeddings",
            }
            raise APIError(
                400,
                f"{route} is not available for this {self.served.kind} model; it answers "
                f"{uses.get(self.served.kind, '/v1/embeddings')}",
                code="unsupported_for_model",
            )

    def submit(self, key: Hashable, payload: Any, size: int = 1) -> Work:
        try:
            return self.batcher.submit(Work(key, payload, size=size))
        except QueueFull:
            raise APIError(
                429,
                f"the server is busy ({self.cfg.queue_size} requests waiting): retry shortly",
                code="queue_full",
                headers={"Retry-After": "1"},
            ) from None

    async def wait(self, work: Work, request: Request) -> Any:
        """The work's result; if the client disconnects first, the work is cancelled (its place freed)."""
        while True:
            done, _ = await asyncio.wait({work.future}, timeout=POLL_S)
            if done:
                return work.future.result()
            if await request.is_disconnected():
                work.cancel()
                raise APIError(499, "client closed the request", code="client_closed")


def create_app(served: Served, engine: Any, cfg: ServeConfig, keys: list[str]) -> FastAPI:
    """The app for ``served`` on ``engine``; ``keys`` empty means no key is asked for."""
    batcher = Batcher(
        lambda key, payloads: run_batch(engine, key, payloads),
        max_batch=cfg.max_batch_size if engine.name == "transformers" else 1,
        wait_s=cfg.batch_wait_ms / 1000.0,
        queue_size=cfg.queue_size,
    )
    metrics = ServerMetrics(lambda: batcher.depth)
    batcher.on_batch = metrics.batch_size.observe
    state = ServerState(served, engine, cfg, batcher, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="tunelab", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.tunelab = state
    errors.install(app)

    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    app.add_middleware(Guard, keys=keys, metrics=metrics)  # outermost: keys first, every answer counted

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": served.model_id, "queue": batcher.depth}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(served, engine.name)]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict[str, Any]:
        state.check_model(name)
        return model_card(served, engine.name)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest, request: Request) -> JSONResponse:
        state.check_model(body.model)
        state.require("classifier", "encoder", route="/v1/embeddings")
        texts = _texts(body.input, served.tokenizer, "input", cfg.max_inputs)
        if body.dimensions is not None:
            raise APIError(
                400,
                "dimensions is not supported: the model's full embeddings are returned",
                param="dimensions",
            )
        got = await state.wait(state.submit(("embed",), texts, size=len(texts)), request)
        vectors, n_tokens = [v for v, _ in got], sum(n for _, n in got)
        metrics.tokens.labels("prompt").inc(n_tokens)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        usage = {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
        return JSONResponse({"object": "list", "data": data, "model": served.model_id, "usage": usage})

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest, request: Request) -> JSONResponse:
        state.check_model(body.model)
        state.require("classifier", route="/v1/classify")
        texts = _texts(body.input, served.tokenizer, "input", cfg.max_inputs)
        got = await state.wait(state.submit(("classify",), texts, size=len(texts)), request)
        probs, n_tokens = [p for p, _ in got], sum(n for _, n in got)
        labels = served.labels or [str(i) for i in range(len(probs[0]))]
        metrics.tokens.labels("prompt").inc(n_tokens)
        data = []
        for i, p in enumerate(probs):
            best = int(np.argmax(p))
            data.append(
                {
                    "index": i,
                    "label": labels[best],
                    "probability": p[best],
                    "probabilities": dict(zip(labels, p, strict=True)),
                }
            )
        usage = {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
        return JSONResponse({"object": "list", "model": served.model_id, "data": data, "usage": usage})

    from tunelab.serve.generation import add_generation_routes

    add_generation_routes(app, state)
    return app


KNOWN_ROUTES = frozenset(
    {
        "/healthz",
        "/metrics",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/classify",
    }
)


class Guard:
    """ASGI middleware: the API key on every route but ``/healthz``, and each answer counted and timed.

    Plain ASGI rather than ``@app.middleware("http")``, whose per-request cost showed in the
    classification throughput (benchmarks/serve_throughput.py).
    """

    def __init__(self, app, keys: list[str], metrics: ServerMetrics) -> None:
        self.app, self.keys, self.metrics = app, keys, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began, path = time.perf_counter(), scope["path"]
        status = [500]

        async def send_counted(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if path not in OPEN_PATHS:
                auth = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
                if not key_ok(auth, self.keys):
                    refusal = APIError(
                        401,
                        "missing or invalid API key: send 'Authorization: Bearer <key>'",
                        code="invalid_api_key",
                    )
                    return await errors.error_response(refusal)(scope, receive, send_counted)
            await self.app(scope, receive, send_counted)
        finally:
            route = path if path in KNOWN_ROUTES else "other"
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - began)


def run_batch(engine: Any, key: Hashable, payloads: list[Any]) -> list[Any]:
    """The worker thread's call: one batch of one kind on the engine, one result per payload."""
    kind = key[0]
    if kind == "generate":
        engine.generate(payloads)
        return payloads
    texts = [t for p in payloads for t in p]
    out = engine.classify(texts) if kind == "classify" else engine.embed(texts)
    results, start = [], 0
    for p in payloads:
        results.append(out[start : start + len(p)])
        start += len(p)
    return results


def model_card(served: Served, engine: str) -> dict[str, Any]:
    """The ``/v1/models`` entry: OpenAI's fields plus the run it came from and its headline figures."""
    run = served.info.get("run") or {}
    return {
        "id": served.model_id,
        "object": "model",
        "created": served.created,
        "owned_by": "tunelab",
        "tunelab": {
            "kind": served.kind,
            "task": served.info.get("task"),
            "engine": engine,
            "run": run.get("name"),
            "run_id": run.get("train_run_id"),
            "labels": served.labels,
            "evaluation": served.info.get("evaluation") or {},
            "context": served.context if served.kind == "causal" else served.max_length,
        },
    }


def _texts(value: Any, tokenizer, param: str, limit: int) -> list[str]:
    """Texts of an ``input`` field: a string, strings, token ids, or lists of token ids."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif value and all(isinstance(v, int) for v in value):
        items = [tokenizer.decode(value)]
    else:
        items = [tokenizer.decode(v) if isinstance(v, list) else v for v in value]
    if not items:
        raise APIError(400, f"{param} must not be empty", param=param)
    if len(items) > limit:
        raise APIError(400, f"{param} holds {len(items)} texts; at most {limit} per request", param=param)
    if any(not isinstance(t, str) or not t.strip() for t in items):
        raise APIError(400, f"{param} must not hold empty strings", param=param)
    return items


def _encode_vector(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai client asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector
