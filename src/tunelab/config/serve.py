"""The ``serve`` section: how ``tunelab serve`` exposes a run's model over HTTP.

Serving is a long-running verb, not a stage, so its section is a core one; every key is also a
flag of ``tunelab serve``. Defaults are safe: loopback only, bounded bodies, prompts and queues.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tunelab.config.base import Section


class ServeConfig(Section):
    host: str = Field("127.0.0.1", description="address to bind; anything but loopback needs an API key")
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port")
    engine: Literal["transformers", "llama.cpp"] = Field(
        "transformers", description="llama.cpp serves the run's GGUF export (the llamacpp extra)"
    )
    gguf: str | None = Field(None, description="llama.cpp: the GGUF file (default: the run's q8_0 export)")
    model_id: str | None = Field(None, description="the model name clients send (default: the run's name)")
    api_key_env: str = Field("TUNELAB_API_KEYS", description="environment variable with comma-separated keys")
    api_keys_file: str | None = Field(None, description="a file with one API key per line")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="larger request bodies get 413")
    max_prompt_tokens: int | None = Field(None, ge=1, description="default: the model's context")
    max_tokens: int = Field(512, ge=1, description="the most new tokens a request may ask for")
    default_max_tokens: int = Field(128, ge=1, description="new tokens when a request does not say")
    max_n: int = Field(4, ge=1, le=64, description="the most choices (n) per request")
    max_inputs: int = Field(64, ge=1, description="the most texts per classify or embeddings request")
    queue_size: int = Field(64, ge=1, description="waiting requests beyond this get 429")
    max_batch_size: int = Field(8, ge=1, le=256, description="requests run together")
    batch_wait_ms: float = Field(5.0, ge=0.0, le=1000.0, description="how long a batch waits to fill")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="sampling precision; greedy decoding and classification always run in fp32"
    )
    threads: int | None = Field(None, ge=1, description="torch / llama.cpp threads (default: all cores)")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("host must not be empty")
        return v.strip()
