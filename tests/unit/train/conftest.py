"""Fixtures of the training tests."""

from __future__ import annotations

import pytest
from accelerate.state import AcceleratorState


@pytest.fixture
def fresh_accelerator_state():
    """accelerate keeps one process-wide state and refuses another mixed_precision once it is set:
    tests that force fp32 (or bf16) start from, and leave, a clean one."""
    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()
