"""The ``generate`` section: prompt templates, decoding settings and presets, the sweep, synthetic data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.config.base import Section
from tunelab.config.decoding import DecodingConfig

DIVERSITY_METRICS = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "self_bleu",
    "entropy",
    "repetition_rate",
    "embedding_similarity",
)


class FewShotConfig(Section):
    k: int = Field(0, ge=0, le=32, description="examples from the train split shown before the input")
    strategy: Literal["random", "similar"] = Field(
        "random", description="random (seeded) or the most similar train rows (MiniLM embeddings)"
    )


class PromptConfig(Section):
    """A Jinja2 template (inline or a file) rendered through the tokenizer's chat template.

    Variables: ``input`` (the row's prompt or text), ``examples`` (few-shot rows, each with
    ``input`` and ``output``), ``labels`` (classification) and the recipe's ``variables``. An
    undefined variable is an error that names it.
    """

    name: str = "default"
    template: str | None = Field(None, description="Jinja2 text; default: the input alone")
    file: str | None = Field(None, description="a file holding the template")
    system: str | None = Field(None, description="system prompt (Jinja2 too)")
    variables: dict[str, Any] = Field(default_factory=dict)
    few_shot: FewShotConfig = Field(default_factory=FewShotConfig)

    @model_validator(mode="after")
    def _one_source(self) -> PromptConfig:
        if self.template is not None and self.file is not None:
            raise ValueError("give template or file, not both")
        return self


class SweepConfig(Section):
    enabled: bool = False
    temperatures: list[float] = Field(default_factory=lambda: [0.3, 0.7, 1.0, 1.2])
    top_ps: list[float] = Field(default_factory=lambda: [0.9, 1.0])
    min_ps: list[float] = Field(default_factory=list, description="empty: min-p is not swept")
    prompts: int = Field(8, ge=1, description="prompts per setting")
    num_samples: int = Field(4, ge=2, le=64, description="samples per prompt (diversity needs several)")

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, v: list[float]) -> list[float]:
        if not v or any(t < 0 for t in v):
            raise ValueError("temperatures must be a non-empty list of values >= 0")
        return v

    @field_validator("top_ps")
    @classmethod
    def _top_ps(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < p <= 1 for p in v):
            raise ValueError("top_ps must be a non-empty list of values in (0, 1]")
        return v

    @field_validator("min_ps")
    @classmethod
    def _min_ps(cls, v: list[float]) -> list[float]:
        if any(not 0 <= p <= 1 for p in v):
            raise ValueError("min_ps must be values in [0, 1]")
        return v


class SyntheticConfig(Section):
    enabled: bool = False
    n: int = Field(20, ge=1, le=100000, description="rows wanted")
    kind: Literal["auto", "instruction", "labeled"] = Field(
        "auto", description="instruction pairs (sft) or labeled texts per class (classification)"
    )
    seeds: str | None = Field(None, description="a JSONL of seed rows; default: the train split")
    seed_examples: int = Field(3, ge=1, le=16, description="seed rows shown in each generation prompt")
    max_rounds: int = Field(6, ge=1, le=1000, description="generation rounds before giving up")
    min_words: int = Field(2, ge=1)
    max_words: int = Field(200, ge=1)
    near_duplicate_threshold: float = Field(0.8, gt=0.0, le=1.0, description="MinHash Jaccard")
    rouge_threshold: float = Field(0.7, gt=0.0, le=1.0, description="ROUGE-L to the pool above this: dropped")
    check_label: bool = Field(True, description="labeled texts: the run's classifier must agree")
    template: str | None = Field(None, description="your own generation prompt (Jinja2)")
    decoding: DecodingConfig = Field(default_factory=lambda: DecodingConfig(preset="creative"))


class GenerateConfig(Section):
    generator: str | None = Field(
        None,
        description="a causal LM that writes text when the run's own model cannot (a classifier): "
        "an alias such as smollm2, a folder or a hub id",
    )
    split: str = Field("test", pattern=r"^(train|validation|test)$")
    n_prompts: int = Field(16, ge=1, description="prompts of the split sampled")
    batch_size: int = Field(8, ge=1, le=512)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    compare: list[PromptConfig] = Field(
        default_factory=list, description="templates `prompts compare` scores"
    )
    decoding: DecodingConfig = Field(default_factory=DecodingConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    diversity_target: dict[str, float] = Field(
        default_factory=dict, description="e.g. {distinct_2: 0.6}: the sweep setting that reaches it best"
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)

    @field_validator("diversity_target")
    @classmethod
    def _known_targets(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(DIVERSITY_METRICS))
        if unknown:
            raise ValueError(f"unknown diversity metric(s) {unknown}; known: {', '.join(DIVERSITY_METRICS)}")
        return v

    @field_validator("compare")
    @classmethod
    def _distinct_names(cls, v: list[PromptConfig]) -> list[PromptConfig]:
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError("each template in compare needs its own name")
        return v
