"""The ``run`` section: where the run directory goes and the seed everything derives from."""

from __future__ import annotations

from pydantic import Field

from tunelab.config.base import Section


class RunConfig(Section):
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run folder name")
    output_dir: str = Field("runs", description="parent folder of the run directory")
    seed: int = Field(42, ge=0, description="seed for splits, initialisation and data order")
