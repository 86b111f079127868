"""The explain stage: attributions, attention, rules and layer-wise analysis, each with its faithfulness.

It needs the data stage's splits and, unless ``--base`` is given, the train stage's model: the
trained model's manifest record is one of its inputs (see :func:`inputs`), so retraining makes the
explanations stale while ``--base`` works on a run that has not been trained.
"""

from __future__ import annotations

from typing import Any

from tunelab.explain.config import ExplainConfig
from tunelab.stages import Option, Stage, register


def inputs(recipe: Any) -> dict[str, Any]:
    """The train stage's record (fingerprint and run id): the model the explanations are of."""
    from tunelab.runs import RunDir

    rec = RunDir(recipe.run_dir_path()).stage_record("train") or {}
    return {"explain.model": [rec.get("fingerprint"), rec.get("run_id")]}


STAGE = register(
    Stage(
        name="explain",
        run="tunelab.explain.stage:run",
        help="Explain the fine-tuned model: attributions, attention, rules, layers, faithfulness.",
        reads=("task", "model", "train.precision", "explain", "run.seed"),
        needs=("data",),
        outputs=("explain/examples.jsonl", "explain/faithfulness.json", "explain/index.html"),
        section=ExplainConfig,
        inputs="tunelab.explain:inputs",
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
