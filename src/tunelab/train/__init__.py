"""The train stage: model adaptation, the training loop, checkpoints and resume."""

from tunelab.stages import Option, Stage, register

STAGE = register(
    Stage(
        name="train",
        run="tunelab.train.stage:run",
        help="Fine-tune the model on the run's prepared data.",
        reads=("task", "model", "train", "run.seed"),
        needs=("data",),
        outputs=("model/tunelab_model.json", "metrics/train_summary.json"),
        options=(
            Option("resume", False, "continue training from the last checkpoint", reruns=True),
            Option(
                "callbacks", None, "extra training-loop callbacks (hyperparameter search)", object, cli=False
            ),
        ),
        all_ranks=True,
    )
)
