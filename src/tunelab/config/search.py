"""The ``search`` section: hyperparameter search space and study settings, and model-ranking candidates."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import NoneType
from typing import Annotated, Any, Literal, get_args, get_origin

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


class _Range(Section):
    """A number between ``low`` and ``high`` (inclusive); ``log`` samples on a log scale."""

    low: float
    high: float
    log: bool = False

    def probes(self) -> list[Any]:
        """Values worth checking against the recipe before any trial runs."""
        return [self.low, self.high]

    def decode(self, stored: Any) -> Any:
        return stored

    def match_own(self, own: Any, canonical: Callable[[Any], Any]) -> tuple[bool, Any]:
        """(is the recipe's own value in the space, the value as the study stores it)."""
        inside = _is_number(own) and self.low <= own <= self.high and self._fits(own)
        return inside, self.cast(own) if inside else None

    def _fits(self, value: float) -> bool:
        return True

    def cast(self, value: Any) -> Any:
        return float(value)


class FloatParam(_Range):
    """A float, e.g. ``{type: float, low: 1.0e-5, high: 1.0e-3, log: true}`` for a learning rate."""

    type: Literal["float"]
    step: float | None = Field(None, gt=0, description="grid step; cannot be combined with log")

    @model_validator(mode="after")
    def _ordered(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


class IntParam(_Range):
    """An integer, e.g. ``{type: int, low: 4, high: 32, log: true}`` for a LoRA rank."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        _check_range(self.low, self.high, self.log, None if self.step == 1 else self.step)
        return self

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def _fits(self, value: float) -> bool:
        return float(value).is_integer() and (value - self.low) % self.step == 0

    def cast(self, value: Any) -> int:
        return int(value)


class CategoricalParam(Section):
    """One of ``choices``: numbers, names, null, or whole mappings and lists.

    Mappings and lists (``train.strategies: {choices: [[], [{name: layerwise_lr}]]}``) are stored in
    the study as their JSON text, since optuna keeps only plain values.
    """

    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v: list[Any]) -> list[Any]:
        if len({_label(c) for c in v}) != len(v):
            raise ValueError("choices must not repeat")
        return v

    def suggest(self, trial: Any, name: str) -> Any:
        return self.decode(trial.suggest_categorical(name, [_label(c) for c in self.choices]))

    def probes(self) -> list[Any]:
        return list(self.choices)

    def decode(self, stored: Any) -> Any:
        return next(c for c in self.choices if _label(c) == stored)

    def match_own(self, own: Any, canonical: Callable[[Any], Any]) -> tuple[bool, Any]:
        # compare as the recipe holds them: `16` matches 16.0, `focal` matches {name: focal, gamma: 2.0}
        for c in self.choices:
            if _same(canonical(c), own):
                return True, _label(c)
        return False, None


def _label(value: Any) -> Any:
    """How optuna stores a choice: plain values as they are, mappings and lists as JSON text."""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 is one value, but True == 1 is not (booleans and numbers stay apart)
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
    """Why ``key`` is not a value of the recipe a trial may change, or None if it is.

    The path walks sections (``model.adapter.r``), plug-in specs chosen by name (``train.loss.gamma``)
    and list items by index (``train.strategies.0.decay``); a whole section or list can be a choice.
    """
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
        if (reason := NOT_SEARCHABLE.get(".".join(parts[:n]))) is not None:
            return f"cannot be searched: {reason}"
    kind, payload = "sections", [root]
    for i, part in enumerate(parts):
        here = ".".join(parts[:i])
        if kind == "value":
            return f"{here} is a value, not a section"
        if kind == "list":
            if not part.isdigit():
                return f"{here} is a list: name an item by its index, e.g. {here}.0"
            kind, payload = _node(payload)
            continue
        fields = {name: f for cls in reversed(payload) for name, f in cls.model_fields.items()}
        if part not in fields:
            if i == len(parts) - 1 and any(cls.model_config.get("extra") == "allow" for cls in payload):
                return None  # a dotted-path plug-in takes any parameter; check_space tries the values
            return f"{here or 'the recipe'} has no key {part!r} (known: {', '.join(sorted(fields))})"
        kind, payload = _node(fields[part].annotation)
    return None


def _node(annotation: Any) -> tuple[str, Any]:
    """What a field holds: ("sections", [classes]), ("list", item type) or ("value", None)."""
    if get_origin(annotation) is Annotated:
        return _node(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "sections", [annotation]
    if get_origin(annotation) is list:
        return "list", get_args(annotation)[0]
    members = [_node(a) for a in get_args(annotation) if a is not NoneType]  # X | Y | None
    classes = [c for kind, found in members if kind == "sections" for c in found]
    if classes:
        return "sections", classes
    return next((m for m in members if m[0] == "list"), ("value", None))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError("log scale needs low > 0")
    if log and step is not None:
        raise ValueError("give either log or step, not both")
