"""Shared base for recipe sections: unknown keys are errors, values are checked on assignment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A recipe section. ``extra="forbid"`` turns a typo into an error that names the key."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
