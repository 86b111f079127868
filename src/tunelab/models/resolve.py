"""Turn ``model.name`` into something ``from_pretrained`` can load, and the kwargs to load it safely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tunelab.config.model import ModelConfig
from tunelab.models.bundled import bundled_model, package_file
from tunelab.models.gguf_cache import converted_gguf_folder


def cache_root() -> Path:
    """Where converted models are cached (``TUNELAB_CACHE``, default ``~/.cache/tunelab``)."""
    return Path(os.environ.get("TUNELAB_CACHE", Path.home() / ".cache" / "tunelab"))


def resolve_model_path(cfg: ModelConfig) -> str:
    """A local folder for bundled aliases and folders; the hub id unchanged otherwise."""
    bundled = bundled_model(cfg.name)
    if bundled is not None:
        src = package_file(bundled.dist, bundled.rel)
        if bundled.gguf:
            return str(converted_gguf_folder(src, cache_root() / "models" / bundled.alias))
        return str(src)
    local = Path(cfg.name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(
                f"model folder {local} has no config.json: point model.name at a save_pretrained folder"
            )
        return str(local)
    if cfg.name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model folder {cfg.name} does not exist")
    return cfg.name  # a hub id; from_pretrained fetches it or uses the local HF cache


def load_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    """Safe defaults: safetensors only, no remote code, unless the recipe says otherwise."""
    kw: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code}
    if not cfg.allow_pickle:
        kw["use_safetensors"] = True
    if cfg.revision:
        kw["revision"] = cfg.revision
    if cfg.attn_implementation:
        kw["attn_implementation"] = cfg.attn_implementation
    return kw


def load_tokenizer(cfg: ModelConfig, path: str | None = None):
    from transformers import AutoTokenizer

    path = path or resolve_model_path(cfg)
    kw = {"trust_remote_code": cfg.trust_remote_code}
    if cfg.revision:
        kw["revision"] = cfg.revision
    tok = AutoTokenizer.from_pretrained(path, **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
