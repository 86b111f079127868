"""The generate stage: prompt templates, decoding control with measured diversity, a decoding sweep
and synthetic data with provenance. ``tunelab prompts compare`` ranks templates.

Like explain, it needs the data stage and uses the trained model unless ``--base`` is given; the
train stage's record is one of its inputs, so retraining makes its outputs stale.
"""

from __future__ import annotations

from tunelab.generate.config import GenerateConfig
from tunelab.stages import Option, Stage, register

STAGE = register(
    Stage(
        name="generate",
        run="tunelab.generate.stage:run",
        help="Generate with the fine-tuned model: samples with diversity and quality, sweep, synthetic data.",
        reads=("task", "model", "train.precision", "generate", "run.seed"),
        needs=("data",),
        outputs=(),
        section=GenerateConfig,
        inputs="tunelab.pipeline:trained_model",
        options=(
            Option("base", False, "generate with the base model instead of the fine-tuned one", reruns=True),
            Option("n", None, "prompts of the split (default: generate.n_prompts)", int, reruns=True),
        ),
    )
)

__all__ = ["STAGE", "GenerateConfig"]
