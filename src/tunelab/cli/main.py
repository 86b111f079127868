"""The ``tunelab`` app: each verb lives in a short module; heavy imports wait until a verb runs."""

from __future__ import annotations

import sys

import typer

from tunelab.cli import recipes, search, stages

app = typer.Typer(
    name="tunelab",
    help="From a raw text dataset to a fine-tuned, evaluated language model, driven by one YAML recipe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for verb in (stages.run, recipes.validate, recipes.init, recipes.models):
    app.command(verb.__name__)(verb)
app.command("tune")(search.tune)
app.command("rank-models")(search.rank_models)


def add_stage_verbs() -> None:
    """One verb per registered stage (entry points and plug-ins); ``main`` calls it on every start."""
    from tunelab.stages import load_stages

    taken = {c.name for c in app.registered_commands}
    for stage in load_stages():
        if stage.name not in taken:
            app.command(stage.name, help=stage.help)(stages.stage_verb(stage))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code so tests can call it in-process."""
    add_stage_verbs()
    try:
        code = app(args=argv if argv is not None else sys.argv[1:], standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # click's usage errors
        return int(exc.code or 0)
    except Exception as exc:  # click.ClickException and friends
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
