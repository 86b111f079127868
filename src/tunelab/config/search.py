"""The ``search`` section: hyperparameter search space and study settings, and model-ranking candidates."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from tunelab.config.base import Section

# Keys a trial must not change, and why (trials share the parent's prepared data and run folder).
NOT_SEARCHABLE = {
    "run.name": "each trial gets its own run folder under <run_dir>/search/",
    "run.output_dir": "each trial gets its own run folder under <run_dir>/search/",
    "task": "one study tunes one task",
    "stages": "trials run the train stage only",
    "data": "trials share the parent run's prepared data/ (run one search per data recipe)",
    "evaluate": "trials are scored on validation by the train stage; evaluate does not run",
    "search": "the search settings cannot search themselves",
}
Scalar = bool | int | float | str | None


class FloatParam(Section):
    """A float between ``low`` and ``high``; ``log`` samples on a log scale (learning rates)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0, description="grid step; cannot be combined with log")

    @model_validator(mode="after")
    def _ordered(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.low <= value <= self.high

    def coerce(self, value: Any) -> float:
        return float(value)

    def probes(self) -> list[float]:
        """Values worth checking against the recipe before any trial runs."""
        return [self.low, self.high]


class IntParam(Section):
    """An integer between ``low`` and ``high`` inclusive."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        return _is_number(value) and float(value).is_integer() and self.low <= value <= self.high

    def coerce(self, value: Any) -> int:
        return int(value)

    def probes(self) -> list[int]:
        return [self.low, self.high]


class CategoricalParam(Section):
    """One of ``choices`` (numbers, strings, booleans or null)."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v: list[Scalar]) -> list[Scalar]:
        if len({repr(c) for c in v}) != len(v):
            raise ValueError("choices must not repeat")
        return v

    def suggest(self, trial: Any, name: str) -> Scalar:
        return trial.suggest_categorical(name, self.choices)

    def contains(self, value: Any) -> bool:
        return any(self._same(value, c) for c in self.choices)

    def coerce(self, value: Any) -> Scalar:
        return next(c for c in self.choices if self._same(value, c))

    def probes(self) -> list[Scalar]:
        return list(self.choices)

    @staticmethod
    def _same(a: Any, b: Any) -> bool:
        # 1 == 1.0 is one choice, but True == 1 is not (booleans and numbers stay apart)
        return a == b and isinstance(a, bool) == isinstance(b, bool)


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def _searchable(key: str) -> str:
    from tunelab.config.recipe import Recipe  # late: recipe.py imports this module

    if (problem := key_problem(Recipe, key)) is not None:
        raise ValueError(problem)
    return key


# A dict key type: pydantic then reports bad keys and bad ranges together, each with its path.
SearchKey = Annotated[str, AfterValidator(_searchable)]


class PrunerConfig(Section):
    """Stop unpromising trials early by comparing their n-th validation with other trials' n-th."""

    name: str = Field("median", description="median | none (see tunelab.search.study.PRUNERS)")
    startup_trials: int = Field(2, ge=0, description="trials that always finish before pruning starts")
    warmup_evaluations: int = Field(0, ge=0, description="evaluations of a trial before it can be pruned")


class SearchConfig(Section):
    space: dict[SearchKey, Param] = Field(
        default_factory=dict,
        description="recipe key path -> range, e.g. "
        "train.learning_rate: {type: float, low: 1e-5, high: 1e-3, log: true}",
    )
    metric: str | None = Field(
        None, description="validation metric to optimise; default train.metric_for_best or the task's"
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="default from the metric: loss and perplexity minimise, the rest maximise"
    )
    n_trials: int = Field(20, ge=1, description="finished trials the study should hold, across all workers")
    timeout: float | None = Field(None, gt=0, description="seconds after which a worker starts no new trial")
    storage: str | None = Field(
        None, description="optuna storage URL; default sqlite:///<run_dir>/search/study.db (share it to join)"
    )
    study_name: str | None = Field(None, description="default the run name")
    sampler: str = Field("tpe", description="tpe | random (see tunelab.search.study.SAMPLERS)")
    pruner: PrunerConfig = PrunerConfig()
    enqueue_default: bool = Field(
        True, description="trial 0 uses the recipe's own values, so the best is never worse than the default"
    )
    keep_models: Literal["best", "all", "none"] = Field(
        "best", description="which trials keep their model/ folder once the search ends"
    )
    candidates: list[str] = Field(
        default_factory=list, description="rank-models: base models to compare (aliases, hub ids or folders)"
    )
    rank_train_rows: int = Field(1000, ge=10, description="rank-models: train rows for the linear probe")
    rank_eval_rows: int = Field(500, ge=10, description="rank-models: validation rows scored per candidate")


def key_problem(root: type[BaseModel], key: str) -> str | None:
    """Why ``key`` is not a searchable value of the recipe, or None if it is."""
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        if (reason := NOT_SEARCHABLE.get(".".join(parts[:n]))) is not None:
            return f"cannot be searched: {reason}"
    model: type[BaseModel] = root
    for i, part in enumerate(parts):
        where = ".".join(parts[:i]) or "the recipe"
        if part not in model.model_fields:
            return f"{where} has no key {part!r} (known: {', '.join(sorted(model.model_fields))})"
        section = _section_type(model.model_fields[part].annotation)
        last = i == len(parts) - 1
        if last and section is not None:
            keys = ", ".join(sorted(section.model_fields))
            return f"a section, not a value; search one of its keys ({keys})"
        if not last and section is None:
            return f"{'.'.join(parts[: i + 1])} is a value, not a section"
        model = section or model
    return None


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The recipe section class behind a field type (``AdapterConfig | None`` -> AdapterConfig)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return found[0] if len(found) == 1 else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError("log scale needs low > 0")
    if log and step is not None:
        raise ValueError("give either log or step, not both")
