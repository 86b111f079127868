"""``/v1/chat/completions`` and ``/v1/completions``: prompts checked against the limits, decoded in
batches, answered whole or streamed as server-sent events.

A stream sends the role in its first delta, text deltas as tokens arrive, ``finish_reason`` in
the last chunk of each choice, a usage chunk when ``stream_options.include_usage`` asks for it,
then ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from tunelab.config.decoding import DecodingConfig
from tunelab.serve.engine import GenJob
from tunelab.serve.errors import APIError, error_body
from tunelab.serve.schemas import ChatRequest, CompletionRequest


def add_generation_routes(app: FastAPI, state) -> None:
    served = state.served

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        state.check_model(body.model)
        state.require("causal", route="/v1/chat/completions")
        body.refuse_unsupported()
        prompt = chat_prompt(served.tokenizer, [(m.role, m.text()) for m in body.messages])
        return await _answer(state, request, body, [prompt], chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        state.check_model(body.model)
        state.require("causal", route="/v1/completions")
        body.refuse_unsupported()
        prompts = _completion_prompts(served.tokenizer, body.prompt)
        return await _answer(state, request, body, prompts, chat=False)


def chat_prompt(tokenizer, messages: list[tuple[str, str]]) -> list[int]:
    """Token ids of a conversation through the chat template, ready for the assistant's turn.

    The same rendering as the generate stage's (template text, then tokens without adding special
    tokens again); ``developer`` is OpenAI's newer name for ``system``.
    """
    turns = [{"role": "system" if r == "developer" else r, "content": c} for r, c in messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer("\n\n".join(t["content"] for t in turns))["input_ids"])


def _completion_prompts(tokenizer, prompt: Any) -> list[list[int]]:
    if isinstance(prompt, str):
        return [list(tokenizer(prompt)["input_ids"])]
    if prompt and all(isinstance(t, int) for t in prompt):
        return [list(prompt)]
    out = [list(p) if isinstance(p, list) else list(tokenizer(p)["input_ids"]) for p in prompt]
    if not out:
        raise APIError(400, "prompt must not be empty", param="prompt")
    return out


def _decoding(state, body, prompts: list[list[int]]) -> DecodingConfig:
    """The request's decoding settings, within the server's limits and the model's context."""
    cfg, context = state.cfg, state.served.context
    if body.n > cfg.max_n:
        raise APIError(400, f"n={body.n} is over this server's limit of {cfg.max_n}", param="n")
    limit = min(cfg.max_prompt_tokens or context, context)
    longest = max(len(p) for p in prompts)
    if any(len(p) == 0 for p in prompts):
        raise APIError(400, "the prompt is empty", param="prompt")
    if longest >= limit:
        raise APIError(
            400,
            f"the prompt is {longest} tokens; this model's limit is {limit - 1} prompt tokens",
            param="messages" if isinstance(body, ChatRequest) else "prompt",
            code="context_length_exceeded",
        )
    asked = body.new_tokens()
    if asked is not None and asked > cfg.max_tokens:
        raise APIError(
            400, f"max_tokens={asked} is over this server's limit of {cfg.max_tokens}", param="max_tokens"
        )
    room = context - longest
    if asked is not None and asked > room:
        raise APIError(
            400,
            f"the prompt ({longest} tokens) plus max_tokens={asked} exceeds the model's context of "
            f"{context} tokens; at most {room} new tokens fit",
            param="max_tokens",
            code="context_length_exceeded",
        )
    new = asked if asked is not None else min(cfg.default_max_tokens, room)
    try:
        return DecodingConfig(
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=body.top_p,
            max_new_tokens=new,
            num_samples=body.n,
            stop=body.stops(),
        )
    except ValidationError as exc:
        raise APIError(400, "; ".join(e["msg"] for e in exc.errors())) from None


def _key(decoding: DecodingConfig, n: int, seed: int | None) -> tuple:
    return ("generate", json.dumps(decoding.settings(), sort_keys=True), n, seed)


async def _answer(state, request: Request, body, prompts: list[list[int]], *, chat: bool):
    decoding = _decoding(state, body, prompts)
    seed = body.seed if body.seed is not None else random.SystemRandom().randrange(2**31)
    key = _key(decoding, body.n, body.seed)  # unseeded requests batch together under one fresh seed
    jobs = [GenJob(p, decoding, body.n, seed) for p in prompts]
    rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
    deltas: asyncio.Queue = asyncio.Queue()
    if body.stream:
        loop = asyncio.get_running_loop()
        for p, job in enumerate(jobs):
            job.emit = lambda c, d, p=p: loop.call_soon_threadsafe(deltas.put_nowait, (p * body.n + c, d))
    works = []
    try:
        works = [state.submit(key, job) for job in jobs]  # a full queue is a 429 before any byte is sent
    except APIError:
        for w in works:
            w.cancel()
        raise
    if body.stream:
        return StreamingResponse(
            _stream(state, jobs, works, deltas, rid, body, chat),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    try:
        done = [await state.wait(w, request) for w in works]
    finally:
        for w in works:
            if not w.future.done():
                w.cancel()
    choices = []
    for p, job in enumerate(done):
        for k, sample in enumerate(job.samples):
            index = p * body.n + k
            if chat:
                message = {"role": "assistant", "content": sample.text}
                choices.append(
                    {
                        "index": index,
                        "message": message,
                        "finish_reason": sample.finish_reason,
                        "logprobs": None,
                    }
                )
            else:
                choices.append(
                    {
                        "index": index,
                        "text": sample.text,
                        "finish_reason": sample.finish_reason,
                        "logprobs": None,
                    }
                )
    usage = _usage(state, jobs)
    return JSONResponse(
        {
            "id": rid,
            "object": "chat.completion" if chat else "text_completion",
            "created": _now(),
            "model": state.served.model_id,
            "choices": choices,
            "usage": usage,
            "system_fingerprint": _fingerprint(state),
        }
    )


async def _stream(
    state, jobs: list[GenJob], works: list, deltas: asyncio.Queue, rid: str, body, chat: bool
) -> AsyncIterator[str]:
    base = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": _now()}
    base |= {"model": state.served.model_id, "system_fingerprint": _fingerprint(state)}
    usage_asked = bool(body.stream_options and body.stream_options.include_usage)
    extra = {"usage": None} if usage_asked else {}
    n_choices = len(jobs) * body.n
    sent = [""] * n_choices

    def chunk(index: int, text: str | None, finish: str | None, first: bool = False) -> str:
        if chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text:
                delta["content"] = text
            choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}
        return _event({**base, "choices": [choice], **extra})

    all_done = asyncio.ensure_future(asyncio.gather(*(w.future for w in works)))
    try:
        if chat:
            for i in range(n_choices):
                yield chunk(i, None, None, first=True)
        while True:
            getter = asyncio.ensure_future(deltas.get())
            finished, _ = await asyncio.wait({getter, all_done}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                index, text = getter.result()
                sent[index] += text
                yield chunk(index, text, None)
                continue
            getter.cancel()
            break
        while not deltas.empty():
            index, text = deltas.get_nowait()
            sent[index] += text
            yield chunk(index, text, None)
        try:
            all_done.result()
        except Exception as exc:
            yield _event(error_body(500, f"generation failed: {type(exc).__name__}"))
            yield "data: [DONE]\n\n"
            return
        for p, job in enumerate(jobs):
            for k, sample in enumerate(job.samples):
                index = p * body.n + k
                rest = sample.text[len(sent[index]) :] if sample.text.startswith(sent[index]) else ""
                yield chunk(index, rest or None, sample.finish_reason)
        if usage_asked:
            yield _event({**base, "choices": [], "usage": _usage(state, jobs)})
        yield "data: [DONE]\n\n"
    finally:
        for w in works:
            if not w.future.done():
                w.cancel()
        if not all_done.done():
            all_done.cancel()


def _usage(state, jobs: list[GenJob]) -> dict[str, int]:
    prompt = sum(len(j.prompt) for j in jobs)
    completion = sum(s.n_tokens for j in jobs for s in j.samples)
    state.metrics.tokens.labels("prompt").inc(prompt)
    state.metrics.tokens.labels("completion").inc(completion)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _event(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _fingerprint(state) -> str | None:
    run = state.served.info.get("run") or {}
    return run.get("train_run_id")


def _now() -> int:
    import time

    return int(time.time())
