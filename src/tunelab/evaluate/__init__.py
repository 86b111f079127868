"""The evaluate stage: task metrics with confidence intervals, and base-vs-tuned comparison."""

from tunelab.stages import Stage, register

STAGE = register(
    Stage(
        name="evaluate",
        run="tunelab.evaluate.stage:run",
        help="Score the fine-tuned model (and the base model) on the test split.",
        reads=("task", "evaluate", "run.seed"),
        needs=("data", "train"),
        outputs=("metrics/eval.json", "metrics/comparison.json"),
    )
)
