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
        check_local_folder(cfg, local)
        return str(local)
    if cfg.name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model folder {cfg.name} does not exist")
    return cfg.name  # a hub id; from_pretrained fetches it or uses the local HF cache


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_local_folder(cfg: ModelConfig, folder: Path) -> None:
    """Refuse, naming the recipe key, a local folder that only loads by running its code.

    Pickle weights (``pytorch_model.bin``) and no safetensors need ``model.allow_pickle``; a config whose
    ``auto_map`` points at the folder's own modeling code, for a model type transformers does not know,
    needs ``model.trust_remote_code`` (a known type loads with transformers' own code, the custom code
    unused). ``from_pretrained`` refuses both anyway (``load_kwargs``); this says which key to set.
    """
    if not cfg.allow_pickle and not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise ValueError(
                f"model folder {folder} holds only pickle weights ({', '.join(pickled)}): set "
                "model.allow_pickle: true to load them (unpickling can run code: only files you trust), "
                "or convert them to safetensors"
            )
    if not cfg.trust_remote_code:
        import json

        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # transformers reports a broken config itself
        custom = isinstance(config, dict) and config.get("auto_map")
        if custom and not _known_model_type(config.get("model_type")):
            raise ValueError(
                f"model folder {folder} needs its own modeling code (config.json auto_map): set "
                f"model.trust_remote_code: true to run it, only if you trust that code "
                f"({', '.join(sorted(config['auto_map']))})"
            )


def _known_model_type(model_type: Any) -> bool:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return isinstance(model_type, str) and model_type in CONFIG_MAPPING


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
