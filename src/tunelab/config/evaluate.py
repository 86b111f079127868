"""The ``evaluate`` section: test metrics, bootstrap intervals, base / baseline / tuned comparison."""

from __future__ import annotations

from pydantic import Field

from tunelab.config.base import Section


class EvaluateConfig(Section):
    split: str = Field("test", pattern=r"^(test|validation)$")
    bootstrap_samples: int = Field(1000, ge=0, le=100000)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    metrics: list[str] = Field(
        default_factory=list,
        description="more headline metrics: registered names or dotted paths to your own (pkg.mod:fn)",
    )
    compare_base: bool = True
    baseline: bool = Field(
        True,
        description="TF-IDF + linear model on the same splits, scored on the same rows "
        "(classification, multilabel, regression); false turns it off",
    )
    max_examples: int | None = Field(None, ge=1, description="evaluate on at most this many rows")
    generate_examples: int = Field(40, ge=0, description="sft: answers generated for ROUGE-L")
    max_new_tokens: int = Field(48, ge=1, le=4096)
