"""The ``train`` section: optimisation, schedule, loss, strategies, precision, evaluation, checkpoints.

Losses and strategies are named plug-ins: ``loss: {name: focal, gamma: 2.0}``. Each built-in name has
a parameter model here (so a typo in a parameter is an error with its key path, without importing
torch); a dotted path (``mypkg.losses:MyLoss``) takes any parameters and is checked when it is built.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WrapValidator, field_validator, model_validator

from tunelab.config.base import Section

# ---- plug-in specs: one small model per built-in name -------------------------------------------


class PluginSpec(BaseModel):
    """A plug-in given by dotted path; its parameters are passed through as keyword arguments."""

    model_config = ConfigDict(extra="allow")

    name: str

    def params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"})


class _Spec(Section):
    name: str

    def params(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"})


class CrossEntropySpec(_Spec):
    name: Literal["cross_entropy"] = "cross_entropy"


class ClassWeightedSpec(_Spec):
    """Cross-entropy weighted by ``n / (k * count[c])`` from the train split's label counts."""

    name: Literal["class_weighted"] = "class_weighted"


class LabelSmoothingSpec(_Spec):
    name: Literal["label_smoothing"] = "label_smoothing"
    smoothing: float = Field(0.1, gt=0.0, lt=1.0)


class FocalSpec(_Spec):
    """Focal loss (Lin et al. 2017): ``-(1 - p_t)^gamma * log p_t``."""

    name: Literal["focal"] = "focal"
    gamma: float = Field(2.0, ge=0.0, le=10.0)


class AnswerOnlySpec(_Spec):
    """Causal-LM cross-entropy on the answer tokens only (prompt tokens carry label -100)."""

    name: Literal["answer_only"] = "answer_only"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


class MSESpec(_Spec):
    name: Literal["mse"] = "mse"


class BCESpec(_Spec):
    """Multi-label: a sigmoid per label and binary cross-entropy, averaged over labels and rows."""

    name: Literal["bce"] = "bce"


class GradualUnfreezingSpec(_Spec):
    """ULMFiT: the head first, then one layer group more per ``every`` (top layers first)."""

    name: Literal["gradual_unfreezing"] = "gradual_unfreezing"
    every: Literal["epoch"] | int = Field(
        "epoch", description="'epoch' or a number of optimiser steps between unfreezing two groups"
    )

    @field_validator("every", mode="wrap")
    @classmethod
    def _epoch_or_steps(cls, v: Any, _handler: Any) -> Any:
        # one message instead of one per member of the union
        if v == "epoch" or (type(v) is int and v >= 1):
            return v
        raise ValueError("give 'epoch' or a number of steps (at least 1)")


class LayerwiseLRSpec(_Spec):
    """Layer-wise learning-rate decay: ``lr * decay^depth``; head depth 0, embeddings deepest."""

    name: Literal["layerwise_lr"] = "layerwise_lr"
    decay: float = Field(0.9, gt=0.0, le=1.0)


class CurriculumSpec(_Spec):
    """Easy examples first (Platanios et al. 2019 for ``competence`` pacing)."""

    name: Literal["curriculum"] = "curriculum"
    difficulty: Literal["length", "loss"] = Field(
        "length", description="length: token count; loss: the base model's per-example loss"
    )
    pacing: Literal["ordered", "competence"] = Field(
        "competence", description="ordered: easy to hard every epoch; competence: sample from a growing pool"
    )
    initial_competence: float = Field(0.01, gt=0.0, le=1.0, description="competence: share of data at step 0")
    full_at: float = Field(
        0.5, gt=0.0, le=1.0, description="competence: fraction of training at which all data is in the pool"
    )


class EarlyStoppingSpec(_Spec):
    """Stop when the validation metric has not improved for ``patience`` evaluations in a row."""

    name: Literal["early_stopping"] = "early_stopping"
    patience: int = Field(2, ge=1)
    metric: str | None = Field(None, description="validation metric; default train.metric_for_best")
    min_delta: float = Field(0.0, ge=0.0, description="a smaller change does not count as an improvement")


def _by_name(*specs: type[_Spec]) -> dict[str, type[_Spec]]:
    return {s.model_fields["name"].default: s for s in specs}


LOSS_SPECS = _by_name(
    CrossEntropySpec, ClassWeightedSpec, LabelSmoothingSpec, FocalSpec, AnswerOnlySpec, MSESpec, BCESpec
)
STRATEGY_SPECS = _by_name(GradualUnfreezingSpec, LayerwiseLRSpec, CurriculumSpec, EarlyStoppingSpec)


def _router(kind: str, specs: dict[str, type[_Spec]]):
    """A validator that picks the parameter model by ``name`` so errors keep their key paths."""

    def route(value: Any, _handler) -> Any:
        if isinstance(value, BaseModel):
            return value
        if isinstance(value, str):  # `loss: focal` is short for `loss: {name: focal}`
            value = {"name": value}
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise ValueError(f"a {kind} is a name or a mapping with a 'name' key")
        name = value["name"]
        if name in specs:
            return specs[name].model_validate(value)
        if "." in name or ":" in name:
            return PluginSpec.model_validate(value)
        raise ValueError(
            f"unknown {kind} {name!r}; known: {', '.join(sorted(specs))} "
            "(or a dotted path such as 'pkg.module:Name')"
        )

    return WrapValidator(route)


LossSpec = Annotated[
    CrossEntropySpec
    | ClassWeightedSpec
    | LabelSmoothingSpec
    | FocalSpec
    | AnswerOnlySpec
    | MSESpec
    | BCESpec
    | PluginSpec,
    _router("loss", LOSS_SPECS),
]
StrategySpec = Annotated[
    GradualUnfreezingSpec | LayerwiseLRSpec | CurriculumSpec | EarlyStoppingSpec | PluginSpec,
    _router("strategy", STRATEGY_SPECS),
]


TrackingBackend = Literal["mlflow", "tensorboard"]


class TrackingConfig(Section):
    """Optional experiment tracking (``pip install 'tunelab[track]'``): parameters, per-step metrics,
    the summary and the test metrics go to MLflow and/or TensorBoard."""

    backend: Literal["none"] | TrackingBackend | list[TrackingBackend] = Field(
        "none", description="none, mlflow, tensorboard, or a list of both"
    )
    uri: str | None = Field(
        None, description="MLflow tracking URI: a local folder or sqlite:///path.db; default <run dir>/mlruns"
    )
    experiment: str | None = Field(None, description="MLflow experiment; default the run name")
    log_dir: str | None = Field(None, description="TensorBoard event folder; default <run dir>/tensorboard")

    @field_validator("backend")
    @classmethod
    def _once_each(cls, v: Any) -> Any:
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError("a tracking backend is listed more than once")
        return v

    def backends(self) -> list[str]:
        """The enabled backends, in order (empty for ``none``)."""
        if self.backend == "none":
            return []
        return [self.backend] if isinstance(self.backend, str) else list(self.backend)


class TrainConfig(Section):
    epochs: float = Field(1.0, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps")
    batch_size: int = Field(16, ge=1, le=4096)
    eval_batch_size: int = Field(64, ge=1, le=4096)
    grad_accum: int = Field(1, ge=1, le=1024)
    learning_rate: float = Field(5e-5, gt=0, le=1.0)
    weight_decay: float = Field(0.01, ge=0, le=1.0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1.0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = Field(1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast only where the CPU/GPU has fast bf16 matrix units"
    )
    group_by_length: bool = Field(True, description="batch texts of similar length to cut padding")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations; default once an epoch")
    save_every: int | None = Field(None, ge=1, description="steps between checkpoints; default at each eval")
    keep_checkpoints: int = Field(2, ge=1)
    metric_for_best: str | None = Field(None, description="validation metric that picks the best model")
    log_every: int = Field(10, ge=1)
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; default all cores")
    loss: LossSpec | None = Field(
        None, description="training loss, e.g. {name: focal, gamma: 2}; default the task's own"
    )
    strategies: list[StrategySpec] = Field(
        default_factory=list, description="e.g. [{name: layerwise_lr, decay: 0.9}, {name: early_stopping}]"
    )
    packing: bool = Field(
        False, description="sft: pack examples into rows of model.max_length (no attention across examples)"
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="experiment tracking: {backend: mlflow} or tensorboard"
    )
    calibration: Literal["temperature", "none"] = Field(
        "temperature",
        description="classification: fit a temperature on validation after training (Guo et al. 2017) "
        "that every reported probability uses; none: raw softmax probabilities",
    )
    # ---- training speed (README "Training speed"): each switch is recorded in train_summary.json ----
    chunked_loss: Literal["auto"] | bool = Field(
        "auto",
        description="sft/lm: cross-entropy over the answer tokens only, lm_head in chunks, without the "
        "vocabulary-wide logits of every position; auto: on for sft and lm",
    )
    loss_chunk_tokens: int = Field(
        512, ge=16, le=65536, description="chunked_loss: tokens whose logits are computed at once"
    )
    batch_tokens: int | None = Field(
        None, ge=8,
        description="batches by a token budget (rows x padded length <= this); null: batch_size rows",
    )
    pad_to_multiple_of: Literal["auto", 1, 2, 4, 8, 16, 32, 64] = Field(
        "auto",
        description="pad training batches to a multiple of this length; auto: 8 on CUDA, 4 on CPU, and "
        "with compile a bucket that bounds recompilations",
    )
    compile: Literal["auto"] | bool = Field(
        "auto", description="torch.compile (inductor) the training steps; auto: on with CUDA, off on CPU"
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in backward: less memory, about a third more compute"
    )
    fast_dropout: Literal["auto"] | bool = Field(
        "auto",
        description="dropout masks from 16-bit uniforms (p rounded to 1/65536), 5x cheaper than torch's "
        "CPU bernoulli_; auto: on CPU without compile",
    )
    attention: Literal["auto", "sdpa", "math"] = Field(
        "auto",
        description="training attention of sdpa models on CPU: math (matmul, softmax, matmul) or sdpa "
        "(torch's kernel: flash); auto: without compile, math up to 128 keys, sdpa beyond; GPUs keep sdpa",
    )
    pooled_last_layer: Literal["auto"] | bool = Field(
        "auto",
        description="classification with a first-token head (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA): "
        "the last layer computes keys and values for every position and the rest for the first "
        "alone, the only one the head reads (same logits); auto: on where the model has such a head",
    )
    keep_freed_memory: Literal["auto"] | bool = Field(
        "auto",
        description="raise glibc malloc's mmap and trim thresholds while training, so freed activations "
        "are reused instead of faulted in again each step; auto: on CPU where the process uses glibc",
    )
    used_embedding_rows: Literal["auto"] | bool = Field(
        "auto",
        description="a full fine-tune trains only the input-embedding rows whose token ids occur in the "
        "training split (the others get zero gradient anyway; AdamW's weight decay no longer shrinks "
        "them); auto: on CPU without compile where they are at most 3/4 of an untied table",
    )
    num_interop_threads: int | None = Field(
        None, ge=1, description="torch inter-op threads (set once per process); default torch's own"
    )

    @model_validator(mode="after")
    def _speed_settings_agree(self) -> TrainConfig:
        problems = []
        if self.batch_tokens is not None:
            if any(s.name == "curriculum" for s in self.strategies):
                problems.append(
                    "train.batch_tokens: token budgets build their own batch order, and so does the "
                    "curriculum strategy; keep one"
                )
            if isinstance(self.pad_to_multiple_of, int) and self.batch_tokens < self.pad_to_multiple_of:
                problems.append(
                    f"train.batch_tokens: {self.batch_tokens} is below train.pad_to_multiple_of "
                    f"{self.pad_to_multiple_of}: no row fits"
                )
        if self.chunked_loss is True and self.loss is not None and self.loss.name in LOSS_SPECS \
                and self.loss.name != "answer_only":
            problems.append(
                f"train.chunked_loss: true computes the answer_only loss; train.loss is {self.loss.name!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("strategies")
    @classmethod
    def _each_once(cls, v: list[Any]) -> list[Any]:
        names = [s.name for s in v]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"strategies {repeated} are listed more than once")
        return v
