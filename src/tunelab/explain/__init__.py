"""The explain stage: attributions, attention, rules and layer-wise analysis, each with its faithfulness.

It needs the data stage's splits and, unless ``--base`` is given, the train stage's model: the
trained model's manifest record is one of its inputs (``tunelab.pipeline.trained_model``), so
retraining makes the explanations stale while ``--base`` works on a run that has not been trained.
"""

from __future__ import annotations

from tunelab.explain.config import ExplainConfig
from tunelab.stages import Option, Stage, register

STAGE = register(
    Stage(
        name="explain",
        run="tunelab.explain.stage:run",
        help="Explain the fine-tuned model: attributions, attention, rules, layers, faithfulness.",
        reads=("task", "model", "train.precision", "explain", "run.seed"),
        needs=("data",),
        outputs=("explain/examples.jsonl", "explain/faithfulness.json", "explain/index.html"),
        section=ExplainConfig,
        inputs="tunelab.pipeline:trained_model",
        options=(
            Option(
                "text",
                None,
                "explain this text (or prompt) instead of examples from the split; repeatable",
                list[str],
                reruns=True,
            ),
            Option("split", None, "the split to explain (default: explain.split)", str, reruns=True),
            Option(
                "n", None, "how many examples of the split to explain (default: explain.n)", int, reruns=True
            ),
            Option("base", False, "explain the base model instead of the fine-tuned one", reruns=True),
        ),
    )
)

__all__ = ["STAGE", "ExplainConfig"]
