"""The whole recipe: one YAML file with a section per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from tunelab.config.base import Section
from tunelab.config.data import DataConfig
from tunelab.config.evaluate import EvaluateConfig
from tunelab.config.model import ModelConfig
from tunelab.config.run import RunConfig
from tunelab.config.search import SearchConfig
from tunelab.config.train import TrainConfig


class Recipe(Section):
    run: RunConfig = RunConfig()
    task: Literal["classification", "sft"] = "classification"
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    search: SearchConfig | None = Field(None, description="`tunelab tune` / `tunelab rank-models` settings")
    stages: list[Literal["data", "train", "evaluate"]] = Field(
        default_factory=lambda: ["data", "train", "evaluate"], description="what `tunelab run` runs"
    )

    def run_dir_path(self) -> Path:
        """Relative paths in a recipe resolve against the working directory, as for any CLI."""
        return Path(self.run.output_dir).expanduser() / self.run.name
