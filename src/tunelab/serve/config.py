"""The ``export`` section: which deployable forms of the run's model the export stage writes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tunelab.config.base import Section

GGUF_TYPES = ("f16", "q8_0")


class ExportConfig(Section):
    """Always a merged safetensors folder (``export/model``); optionally int8 and GGUF beside it."""

    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="weights of the merged folder (merging itself is done in fp32); auto: the base's"
    )
    quantize: Literal["none", "int8"] = Field(
        "none", description="int8: dynamic int8 linear layers for CPU inference, quality change measured"
    )
    format: Literal["safetensors", "gguf"] = Field(
        "safetensors", description="gguf adds llama.cpp / Ollama files (Llama-family causal LMs)"
    )
    gguf_types: list[str] = Field(default_factory=lambda: ["f16", "q8_0"], description="f16 and/or q8_0")
    quality_split: str = Field("test", pattern=r"^(train|validation|test)$")
    quality_max_examples: int = Field(200, ge=1, description="rows the int8 quality check scores")
    verify_prompts: int = Field(3, ge=0, le=64, description="prompts whose greedy GGUF output is compared")
    verify_max_new_tokens: int = Field(16, ge=1, le=512)

    @field_validator("gguf_types")
    @classmethod
    def _known_types(cls, v: list[str]) -> list[str]:
        bad = sorted(set(v) - set(GGUF_TYPES))
        if bad or not v:
            raise ValueError(f"gguf_types must be a non-empty list of {', '.join(GGUF_TYPES)}; got {v}")
        return list(dict.fromkeys(v))
