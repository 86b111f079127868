"""The ``model`` section: which pretrained model, and how it is adapted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tunelab.config.base import Section


class AdapterConfig(Section):
    """PEFT adapter. ``method: none`` means full fine-tuning."""

    method: Literal["none", "lora", "dora"] = "none"
    r: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class ModelConfig(Section):
    name: str = Field(
        "minilm",
        description="bundled alias (see `tunelab models`), a Hugging Face hub id, or a local folder",
    )
    revision: str | None = None
    max_length: int = Field(128, ge=8, le=32768)
    adapter: AdapterConfig = AdapterConfig()
    trust_remote_code: bool = False
    allow_pickle: bool = Field(False, description="also load .bin (pickle) weights; safetensors only if false")
    attn_implementation: Literal["sdpa", "eager"] | None = None

    @model_validator(mode="after")
    def _name_not_blank(self) -> ModelConfig:
        if not self.name.strip():
            raise ValueError("model.name is empty: give an alias, a hub id or a folder")
        return self
