"""Sentence embeddings: the bundled MiniLM (or any BERT-like folder), mean-pooled and L2-normalised.

This is what all-MiniLM-L6-v2's sentence-transformers pipeline does (Transformer, mean Pooling,
Normalize; see its ``modules.json``), done with transformers alone: sentence-transformers is not a
dependency. One model per folder is loaded per process and reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "minilm"  # a bundled alias (tunelab.models.bundled)


@dataclass(frozen=True, eq=False)
class Embedder:
    """An encoder and its tokenizer; ``embed`` turns texts into unit vectors."""

    model: Any
    tokenizer: Any
    max_length: int
    path: str

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows of unit L2 norm (mean over real tokens, then normalised)."""
        from tunelab.models.probe import mean_pooled

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pooled, _, _ = mean_pooled(self.model, self.tokenizer, list(texts), self.max_length, batch_size)
        pooled = pooled.astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def load_embedder(path: str | None = None) -> Embedder:
    """The embedder of ``path`` (a model folder or bundled alias; default: the bundled MiniLM).

    Resolved like ``model.name`` (``tunelab.models.resolve``): safetensors only, no remote code. The
    loaded model is cached per resolved folder, so repeated calls cost nothing.
    """
    from tunelab.config.model import ModelConfig
    from tunelab.models.resolve import resolve_model_path

    return _load(resolve_model_path(ModelConfig(name=path or DEFAULT_MODEL)))


@lru_cache(maxsize=4)
def _load(folder: str) -> Embedder:
    from transformers import AutoModel

    from tunelab.config.model import ModelConfig
    from tunelab.models.probe import device
    from tunelab.models.resolve import load_kwargs, load_tokenizer

    cfg = ModelConfig(name=folder)
    tokenizer = load_tokenizer(cfg, folder)
    model = AutoModel.from_pretrained(folder, **load_kwargs(cfg)).eval().to(device())
    return Embedder(model, tokenizer, _max_length(Path(folder), model, tokenizer), folder)


def _max_length(folder: Path, model: Any, tokenizer: Any) -> int:
    """The folder's sentence-transformers ``max_seq_length`` (256 for MiniLM), else the model's limit."""
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        try:
            return int(json.loads(st.read_text(encoding="utf-8"))["max_seq_length"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    limits = [
        getattr(model.config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    valid = [x for x in limits if isinstance(x, int) and x > 0]
    return min(valid) if valid else 512


def embed(texts: list[str], batch_size: int = 64, embedder: Embedder | None = None) -> np.ndarray:
    """Unit-norm embeddings ``(n, dim)`` of ``texts`` (dim 384 with the default MiniLM)."""
    return (embedder or load_embedder()).embed(texts, batch_size)
