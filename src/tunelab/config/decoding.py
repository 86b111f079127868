"""Decoding settings shared by everything that generates text: the generate stage and the server.

``temperature: 0`` is greedy decoding; a named preset fills the keys a recipe leaves unset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tunelab.config.base import Section

# Named presets are plain recipe values: a preset fills the decoding keys the recipe leaves unset.
PRESETS: dict[str, dict[str, Any]] = {
    "precise": {"temperature": 0.2, "top_p": 0.9, "repetition_penalty": 1.05},
    "balanced": {"temperature": 0.7, "top_p": 0.95},
    "creative": {"temperature": 1.1, "top_p": 0.98, "min_p": 0.05},
}


class DecodingConfig(Section):
    """How text is sampled. ``temperature: 0`` is greedy decoding."""

    preset: Literal["precise", "balanced", "creative"] | None = Field(
        None, description="fills the keys left unset: precise | balanced | creative"
    )
    temperature: float = Field(0.7, ge=0.0, le=5.0, description="0 is greedy")
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    typical_p: float | None = Field(None, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0)
    no_repeat_ngram_size: int | None = Field(None, ge=0)
    num_samples: int = Field(1, ge=1, le=64, description="samples per prompt")
    max_new_tokens: int = Field(64, ge=1, le=8192)
    stop: list[str] = Field(default_factory=list, description="stop strings (cut from the output)")
    seed: int | None = Field(None, description="default: run.seed")

    @model_validator(mode="after")
    def _apply_preset(self) -> DecodingConfig:
        if self.preset is not None:
            for key, value in PRESETS[self.preset].items():
                if key not in self.model_fields_set:
                    object.__setattr__(self, key, value)  # no re-validation loop; values are known good
        return self

    def settings(self) -> dict[str, Any]:
        """The decoding values that were used (for provenance and tables)."""
        return self.model_dump(exclude={"preset", "stop"}) | {"stop": list(self.stop)}
