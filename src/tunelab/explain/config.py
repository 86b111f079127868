"""The ``explain`` section: which methods, which examples, their budgets and the split-level analyses."""

from __future__ import annotations

from pydantic import Field, field_validator

from tunelab.config.base import Section

DEFAULT_METHODS = [
    "integrated_gradients",
    "gradient_x_input",
    "saliency",
    "occlusion",
    "shap",
    "lime",
    "attention",
]


class GlobalConfig(Section):
    """Global importance: word attributions over a sample of the split, summed up per class."""

    enabled: bool = True
    method: str = Field("occlusion", description="the attribution method run on every sampled example")
    n: int = Field(200, ge=1, description="examples of the split attributed")
    top_k: int = Field(15, ge=1, le=200)
    min_count: int = Field(2, ge=1, description="a word must occur this often to be listed")


class RulesConfig(Section):
    """A surrogate decision tree fitted on the model's own predictions over word n-grams."""

    enabled: bool = True
    max_depth: int = Field(4, ge=1, le=12)
    max_train: int = Field(2000, ge=10, description="train rows the model labels for the surrogate")
    max_heldout: int = Field(500, ge=10, description="held-out rows (the explained split) for its fidelity")
    ngram_max: int = Field(2, ge=1, le=3)
    min_samples_leaf: int = Field(5, ge=1)


class LayersConfig(Section):
    """Layer-wise analysis: a linear probe per layer, the logit lens, base-vs-tuned CKA."""

    enabled: bool = True
    probe: bool = True
    cka: bool = True
    logit_lens: bool = True
    max_examples: int = Field(300, ge=10, description="rows per split used for probes and CKA")


class ExplainConfig(Section):
    methods: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METHODS),
        description="registered attribution methods (and `attention`); unknown names list the known ones",
    )
    split: str = Field("test", pattern=r"^(train|validation|test)$")
    n: int = Field(12, ge=1, le=10000, description="examples explained one by one")
    select: list[str] = Field(
        default_factory=lambda: ["confident", "misclassified", "random"],
        description="how examples are picked from the split, in turn: confident | misclassified | random",
    )
    texts: list[str] = Field(default_factory=list, description="texts (or prompts) always explained first")
    answers: list[str] = Field(
        default_factory=list, description="causal LMs: the answer to attribute for each of `texts`"
    )
    batch_size: int = Field(64, ge=1, description="rows per forward pass of the shared predictor")
    ig_steps: int = Field(50, ge=1, le=2000, description="integrated gradients: interpolation steps")
    shap_max_evals: int = Field(
        500,
        ge=10,
        description="SHAP partition explainer: model evaluations (below 2 x words + 1 an example's "
        "word scores are coarse, and the stage warns)",
    )
    lime_num_samples: int = Field(
        1000, ge=50, description="LIME: perturbed samples per example (fewer cannot fit a word model)"
    )
    max_new_tokens: int = Field(24, ge=1, le=512, description="causal LMs: answer length when generated")
    faithfulness: bool = True
    fractions: list[float] = Field(
        default_factory=lambda: [0.01, 0.05, 0.10, 0.20],
        description="shares of words removed (comprehensiveness) or kept (sufficiency)",
    )
    random_repeats: int = Field(3, ge=1, le=100, description="random-attribution orderings averaged")
    attention_max_tokens: int = Field(40, ge=2, le=256, description="tokens shown in the attention view")
    global_importance: GlobalConfig = Field(default_factory=GlobalConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    layers: LayersConfig = Field(default_factory=LayersConfig)

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: list[str]) -> list[str]:
        from tunelab.explain.registry import METHODS, load_methods

        load_methods()
        unknown = [m for m in v if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS.names())}")
        if len(set(v)) != len(v):
            raise ValueError("a method is listed twice")
        return v

    @field_validator("select")
    @classmethod
    def _known_selectors(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in ("confident", "misclassified", "random")]
        if bad:
            raise ValueError(f"unknown selector(s) {bad}; use confident, misclassified or random")
        return v

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < f <= 1 for f in v):
            raise ValueError("fractions must be a non-empty list of shares in (0, 1]")
        return sorted(v)
