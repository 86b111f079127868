"""The whole recipe: one YAML file with a section per stage.

The core sections are fields of :class:`Recipe`. A registered stage that owns a section (its
``Stage.section`` model) adds it under the stage's name: :func:`recipe_model` builds the recipe
model with every registered stage's section, so an unknown key in it is an error like any other.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, create_model, field_validator, model_validator

from tunelab.config.base import Section
from tunelab.config.data import DataConfig
from tunelab.config.evaluate import EvaluateConfig
from tunelab.config.model import ModelConfig
from tunelab.config.run import RunConfig
from tunelab.config.search import SearchConfig
from tunelab.config.serve import ServeConfig
from tunelab.config.train import TrainConfig


class Recipe(Section):
    plugins: list[str] = Field(
        default_factory=list, description="modules imported first; they may register stages, losses, metrics"
    )
    run: RunConfig = RunConfig()
    task: str = Field(
        "classification", description="a registered task: classification, regression, multilabel, sft, lm"
    )
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    search: SearchConfig | None = Field(None, description="`tunelab tune` / `tunelab rank-models` settings")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="`tunelab serve` settings")
    stages: list[str] = Field(
        default_factory=lambda: ["data", "train", "evaluate"], description="what `tunelab run` runs, in order"
    )

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        from tunelab.registry import TASKS  # names from entry points: nothing heavy is imported

        if v not in TASKS:
            raise ValueError(f"unknown task {v!r}; known: {', '.join(TASKS.names())}")
        return v

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, v: list[str]) -> list[str]:
        from tunelab.stages import STAGES, load_stages

        load_stages()
        problems = []
        unknown = [s for s in v if s not in STAGES]
        if unknown:
            problems.append(f"unknown stage(s) {unknown}; known: {', '.join(STAGES.names())}")
        if len(set(v)) != len(v):
            problems.append("a stage is listed twice")
        for i, name in enumerate(v):
            if name in STAGES:
                late = [n for n in STAGES.get(name).needs if n in v and v.index(n) > i]
                if late:
                    problems.append(f"{name!r} needs {late}, listed after it")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @model_validator(mode="after")
    def _budget_fits_a_row(self) -> Recipe:
        budget = self.train.batch_tokens
        if budget is not None and budget < self.model.max_length:
            raise ValueError(
                f"train.batch_tokens: {budget} is below model.max_length {self.model.max_length}; "
                "a budget must hold at least one full-length row"
            )
        return self

    def run_dir_path(self) -> Path:
        """Relative paths in a recipe resolve against the working directory, as for any CLI."""
        return Path(self.run.output_dir).expanduser() / self.run.name

    def section(self, name: str) -> Any:
        """A section by name: a core one or one a stage owns."""
        return getattr(self, name)


def recipe_model() -> type[Recipe]:
    """:class:`Recipe` extended with the section of every registered stage that owns one."""
    from tunelab.stages import load_stages

    owned = tuple((s.name, s.section) for s in load_stages() if s.section is not None)
    return _with_sections(owned)


@lru_cache(maxsize=8)
def _with_sections(owned: tuple[tuple[str, type], ...]) -> type[Recipe]:
    if not owned:
        return Recipe
    fields: dict[str, Any] = {
        name: (model, Field(default_factory=model, description=f"settings of the {name} stage"))
        for name, model in owned
    }
    return create_model("Recipe", __base__=Recipe, **fields)
