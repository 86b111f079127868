"""The ``audit`` section: which counterfactual swaps and group metrics are measured, and the gates."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tunelab.config.base import Section

KNOWN_CATEGORIES = ("gender", "names", "nationality", "religion", "age")


class GateConfig(Section):
    """Thresholds a model must stay under; ``null`` turns a gate off. Breaching one fails the audit."""

    flip_rate: float | None = Field(0.1, ge=0.0, le=1.0, description="label-flip rate in any category")
    mean_shift: float | None = Field(
        None, ge=0.0, le=1.0, description="mean |probability shift| in any category"
    )
    logprob_shift: float | None = Field(
        None, ge=0.0, description="causal LMs: mean |change| of the continuation's log-likelihood per token"
    )
    parity_difference: float | None = Field(0.1, ge=0.0, le=1.0, description="demographic-parity difference")
    equalized_odds_difference: float | None = Field(None, ge=0.0, le=1.0)
    regression: float | None = Field(
        0.05, ge=0.0, description="how much worse than the base model a counterfactual figure may get"
    )


class AuditConfig(Section):
    split: str = Field("test", pattern=r"^(train|validation|test)$")
    max_examples: int = Field(1000, ge=1, description="rows of the split audited")
    word_lists: dict[str, str] = Field(
        default_factory=dict, description="category -> a TSV that extends (or adds) a swap list"
    )
    categories: list[str] = Field(default_factory=lambda: list(KNOWN_CATEGORIES))
    group_column: str | None = Field(None, description="a column of the split naming each row's group")
    min_group_size: int = Field(
        20, ge=1, description="smaller groups are reported as insufficient, not gated"
    )
    continuation: str | None = Field(
        None, description="causal LMs: the continuation scored after each prompt (default: the row's answer)"
    )
    compare_base: bool = Field(True, description="score the same swaps on the base model too")
    batch_size: int = Field(32, ge=1, le=1024)
    bootstrap_samples: int = Field(1000, ge=10)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    examples: int = Field(10, ge=0, description="most affected swaps listed")
    gates: GateConfig = Field(default_factory=GateConfig)

    @field_validator("categories")
    @classmethod
    def _known(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a category is listed twice")
        lists = info.data.get("word_lists") or {}
        unknown = [c for c in v if c not in KNOWN_CATEGORIES and c not in lists]
        if unknown:
            raise ValueError(
                f"categories {unknown} have no word list: use {', '.join(KNOWN_CATEGORIES)} "
                "or give each new one a file under audit.word_lists"
            )
        return v
