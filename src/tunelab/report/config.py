"""The ``report`` section: the page title and how much of each gallery the report shows."""

from __future__ import annotations

from pydantic import Field

from tunelab.config.base import Section


class ReportConfig(Section):
    title: str | None = Field(None, description="the page title (default: 'Run report: <run name>')")
    examples: int = Field(5, ge=0, le=100, description="explained examples shown in the explanation gallery")
    samples: int = Field(5, ge=0, le=100, description="prompts whose generated samples are shown")
