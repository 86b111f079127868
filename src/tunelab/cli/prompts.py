"""``tunelab prompts compare``: score the recipe's prompt templates on the validation split."""

from __future__ import annotations

from typing import Annotated

import typer

from tunelab.cli.common import OverridesArg, RecipeArg, friendly, load, say

app = typer.Typer(
    name="prompts", help="Prompt templates: compare them on the validation split.", no_args_is_help=True
)
BaseOpt = Annotated[
    bool, typer.Option("--base", help="score with the base model instead of the fine-tuned one")
]
RowsOpt = Annotated[int | None, typer.Option("--n", help="validation rows scored (default: all)")]


@app.command("compare")
@friendly
def compare(
    recipe: RecipeArg, overrides: OverridesArg = None, base: BaseOpt = False, n: RowsOpt = None
) -> None:
    """Rank generate.compare's templates (answers: perplexity and ROUGE-L; labels: accuracy)."""
    from tunelab.generate.compare import format_table
    from tunelab.generate.comparing import compare_for_run

    r = load(recipe, overrides)
    result, path = compare_for_run(r, base=base, n=n)
    say(format_table(result), highlight=False)
    say("written: ", (str(path), "bold"), highlight=False)
