"""Served throughput: dynamic batching against one request at a time, and llama.cpp beside transformers.

Baselines run in this process, on the same machine and prompts:
- generation: the bundled SmolLM2 served by the transformers engine with batching (max batch 8)
  against the same server taking one request at a time (max batch 1), both at concurrency 8;
- classification: MiniLM with a classification head, the same two servers;
- engines: aggregate new tokens/s at concurrency 1 and 8 of the transformers engine and of the
  llama.cpp engine on a q8_0 GGUF export of the same model (when llama-cpp-python is installed).

    .venv/bin/python benchmarks/serve_throughput.py [--requests 16] [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = [
    "What is the capital of France?",
    "Give me a tip for learning to cook.",
    "Why is the sky blue?",
    "Name three animals that live in the sea.",
    "How do I make a cup of tea?",
    "What is a good name for a cat?",
    "Tell me something about the moon.",
    "What should I read next?",
]


def _served(target: Path, **settings):
    from tunelab.config.serve import ServeConfig
    from tunelab.serve.server import build

    app, served, _ = build(target, ServeConfig(port=0, **settings))
    return app, served


def _load(base_url: str, served, n: int, concurrency: int, call) -> tuple[float, int]:
    """In the client process: ``n`` calls at ``concurrency``; (seconds, tokens or calls)."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=600)
    call(client, served, 0)  # warm-up
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(lambda i: call(client, served, i), range(n)))
    return time.perf_counter() - began, tokens


def _drive(app, served, n: int, concurrency: int, call) -> tuple[float, int]:
    """(seconds, new tokens) for ``n`` calls at ``concurrency`` against ``app`` on loopback.

    The clients run in a second (forked) process, as real clients would: in this one they would
    compete with the server for the GIL and make batching look worse than it is.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tunelab.serve.server import BackgroundServer

    lean = SimpleNamespace(model_id=served.model_id)
    with BackgroundServer(app) as srv, ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as proc:
        return proc.submit(_load, srv.base_url, lean, n, concurrency, call).result()


def _ask(max_tokens: int, client, served, i: int) -> int:
    q = QUESTIONS[i % len(QUESTIONS)] + (" " + "Please be brief." * (i // len(QUESTIONS)))
    got = client.chat.completions.create(
        model=served.model_id,
        messages=[{"role": "user", "content": q}],
        temperature=0,
        max_tokens=max_tokens,
    )
    return got.usage.completion_tokens


_local = threading.local()


def _classify(client, served, i: int) -> int:
    import httpx

    if not hasattr(_local, "http"):  # one connection per client thread, as a real client keeps
        _local.http = httpx.Client(timeout=600)
    r = _local.http.post(
        f"{client.base_url}classify",
        json={"input": f"{QUESTIONS[i % len(QUESTIONS)]} A film worth seeing, number {i}."},
        timeout=600,
    )
    r.raise_for_status()
    return 1


def _classifier_folder(root: Path) -> Path:
    """MiniLM with a (fresh) two-label head, saved as a plain folder: throughput does not need training."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.config.model import ModelConfig
    from tunelab.models.resolve import resolve_model_path

    src = resolve_model_path(ModelConfig(name="minilm"))
    folder = root / "minilm-classifier"
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=2, use_safetensors=True)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(src).save_pretrained(folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--classify-requests", type=int, default=256)
    ap.add_argument("--skip-generation", action="store_true")
    args = ap.parse_args()
    from tunelab.config.model import ModelConfig
    from tunelab.models.resolve import resolve_model_path

    smol = Path(resolve_model_path(ModelConfig(name="smollm2")))
    chat = partial(_ask, args.max_tokens)
    rows = []
    results = {}
    runs = (
        ()
        if args.skip_generation
        else (
            ("transformers, one at a time, concurrency 1", {"max_batch_size": 1}, 1),
            ("transformers, one at a time, concurrency 8", {"max_batch_size": 1}, 8),
            ("transformers, batching, concurrency 8", {"max_batch_size": 8, "batch_wait_ms": 20}, 8),
        )
    )
    if runs:
        print(
            f"generation: SmolLM2-135M, greedy, {args.requests} chat requests x {args.max_tokens} new tokens"
        )
    for label, settings, conc in runs:
        app, served = _served(smol, **settings)
        seconds, tokens = _drive(app, served, args.requests, conc, chat)
        results[label] = tokens / seconds
        rows.append((label, seconds, tokens / seconds, args.requests / seconds))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.skip_generation:
                raise ImportError
            import llama_cpp  # noqa: F401

            from tunelab.serve.gguf import write_gguf

            gguf = Path(tmp) / "model-q8_0.gguf"
            write_gguf(smol, gguf, "q8_0", progress=False)
            for conc in (1, 8):
                app, served = _served(smol, engine="llama.cpp", gguf=str(gguf))
                seconds, tokens = _drive(app, served, args.requests, conc, chat)
                label = f"llama.cpp q8_0 GGUF, concurrency {conc}"
                results[label] = tokens / seconds
                rows.append((label, seconds, tokens / seconds, args.requests / seconds))
        except ImportError:
            print("  (llama-cpp-python is missing: pip install 'tunelab[llamacpp]' for the llama.cpp rows)")
        for label, seconds, tps, rps in rows:
            print(f"  {label:<46} {seconds:7.1f} s  {tps:7.1f} new tokens/s  {rps:5.2f} requests/s")
        if runs:
            base = results["transformers, one at a time, concurrency 8"]
            batched = results["transformers, batching, concurrency 8"]
            print(f"  batching speed-up at concurrency 8: {batched / base:.2f}x")
        single = results.get("llama.cpp q8_0 GGUF, concurrency 1")
        if single:
            ratio = results["transformers, batching, concurrency 8"] / single
            print(f"  transformers batched at concurrency 8 vs llama.cpp single stream: {ratio:.2f}x")

        print(f"classification: MiniLM, {args.classify_requests} requests of one text, concurrency 8")
        folder = _classifier_folder(Path(tmp))
        figures = {}
        for label, settings in (
            ("one at a time", {"max_batch_size": 1}),
            ("batching", {"max_batch_size": 32}),
        ):
            app, served = _served(folder, **settings)
            seconds, n = _drive(app, served, args.classify_requests, 8, _classify)
            figures[label] = n / seconds
            print(f"  {label:<14} {seconds:6.2f} s  {n / seconds:7.1f} requests/s")
        print(f"  batching speed-up: {figures['batching'] / figures['one at a time']:.2f}x")


if __name__ == "__main__":
    main()
