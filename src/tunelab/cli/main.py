"""The ``tunelab`` app: each verb lives in a short module; heavy imports wait until a verb runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli import common, prompts, recipes, search, stages
from tunelab.cli import serve as serving

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
app.command("export")(serving.export)  # before the stage verbs: it also takes a run directory
app.command("serve")(serving.serve)
app.add_typer(prompts.app)


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of an error (or set TUNELAB_DEBUG=1)")
    ] = False,
) -> None:
    common.set_debug(debug)


def add_stage_verbs(argv: list[str]) -> None:
    """One verb per registered stage (entry points and plug-ins); ``main`` calls it on every start.

    A recipe on the command line may name ``plugins`` that register more stages: they are imported
    first, so ``tunelab <plug-in stage> recipe.yaml`` works (an import error is reported later, by
    the recipe's validation, with its key).
    """
    from tunelab.stages import import_plugins, load_stages

    for arg in argv:
        if arg.endswith((".yaml", ".yml")) and Path(arg).is_file():
            import_plugins(_plugins_of(Path(arg)))

    taken = {c.name for c in app.registered_commands}
    for stage in load_stages():
        if stage.name not in taken:
            app.command(stage.name, help=stage.help)(stages.stage_verb(stage))


def _plugins_of(recipe: Path) -> list[str]:
    import yaml

    try:
        raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):  # validation reports it
        return []
    plugins = raw.get("plugins") if isinstance(raw, dict) else None
    return [p for p in plugins if isinstance(p, str)] if isinstance(plugins, list) else []


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code so tests can call it in-process.

    The CLI's error boundary: usage errors (an unknown verb or flag, a missing argument) and user
    errors from a verb end in a short message (see :func:`tunelab.cli.common.handle_error`), not a
    traceback; a bug still raises.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    saved_debug = os.environ.get("TUNELAB_DEBUG")
    common.reset()
    try:
        add_stage_verbs(args)
        code = app(args=args, prog_name="tunelab", standalone_mode=False)
    except (Exception, SystemExit) as exc:
        handled = common.handle_error(exc)
        if handled is None:
            raise  # a bug: its traceback
        return handled
    finally:
        if saved_debug is None:
            os.environ.pop("TUNELAB_DEBUG", None)
        else:
            os.environ["TUNELAB_DEBUG"] = saved_debug
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
