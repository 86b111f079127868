"""The data stage: sources, formats, cleaning, deduplication, leak-free splits, quarantine and a report."""

from tunelab.data.errors import DataError
from tunelab.stages import Option, Stage, register

STAGE = register(
    Stage(
        name="data",
        run="tunelab.data.stage:run",
        help="Load, clean, deduplicate and split the data into the run directory.",
        reads=("task", "data", "run.seed"),
        outputs=(
            "data/train.jsonl",
            "data/validation.jsonl",
            "data/test.jsonl",
            "data/quarantine.jsonl",
            "data/data_report.json",
            "data/data_report.html",
        ),
        inputs="tunelab.data.stage:inputs",
        options=(
            Option("tokenizer", None, "a tokenizer object for token lengths (tests)", object, cli=False),
        ),
    )
)

__all__ = ["STAGE", "DataError"]
