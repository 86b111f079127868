"""Fairness and documentation: the audit stage measures counterfactual and group bias of the
fine-tuned model beside the base, gates on it, and writes the data and model cards.

Like explain, it needs the data stage and reads the trained model; the train stage's record is
one of its inputs, so retraining makes its outputs stale.
"""

from __future__ import annotations

from tunelab.audit.config import AuditConfig
from tunelab.stages import Stage, register

STAGE = register(
    Stage(
        name="audit",
        run="tunelab.audit.stage:run",
        help="Audit fairness: counterfactual swaps and group metrics with gates; data and model cards.",
        reads=("task", "model", "data.sources", "audit", "run.seed"),
        needs=("data",),
        outputs=("audit/fairness.json", "audit/model_card.md"),
        section=AuditConfig,
        inputs="tunelab.audit.stage:inputs",
    )
)

__all__ = ["STAGE", "AuditConfig"]
