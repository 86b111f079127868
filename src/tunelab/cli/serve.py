"""``tunelab export RUN_OR_RECIPE`` and ``tunelab serve RUN_OR_FOLDER``.

Both take a run directory as well as a recipe (a run directory holds its recipe). Every key of
the ``serve`` section is also a flag of ``serve``, made from the section's fields, so the two
can never drift apart; a flag's value is checked like the recipe's, naming ``serve.<key>``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import typer

from tunelab.cli.common import ForceOpt, OverridesArg, friendly, load, say, show_result
from tunelab.config.serve import ServeConfig

TargetArg = Annotated[
    Path,
    typer.Argument(help="a run directory or its recipe (serve: also a model folder)", show_default=False),
]


def recipe_of(target: Path, overrides: list[str] | None):
    """The recipe of ``target``: a YAML file, or a run directory's own ``recipe.yaml`` pointed at it."""
    if target.is_dir():
        if not (target / "recipe.yaml").is_file():
            raise FileNotFoundError(
                f"{target} is not a run directory (no recipe.yaml): give a run or its recipe"
            )
        where = [f"run.output_dir={target.resolve().parent}", f"run.name={target.resolve().name}"]
        return load(target / "recipe.yaml", [*(overrides or []), *where])
    return load(target, overrides)


@friendly
def export(
    target: TargetArg,
    overrides: OverridesArg = None,
    force: ForceOpt = False,
    quantize: Annotated[str | None, typer.Option(help="int8: also a dynamic int8 model")] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="gguf: also GGUF files for llama.cpp")
    ] = None,
    dtype: Annotated[str | None, typer.Option(help="merged weights: auto, fp32, bf16 or fp16")] = None,
):
    """Export the fine-tuned model: a merged safetensors folder (transformers, vLLM), int8, GGUF."""
    from tunelab.cli.summary import show_summary
    from tunelab.pipeline import run_stage

    r = recipe_of(target, overrides)
    result = run_stage("export", r, force=force, quantize=quantize, format=format, dtype=dtype)
    show_result(result)
    show_summary([result], Path(r.run_dir_path()))


def _serve(target: Path, **flags: Any) -> None:
    from pydantic import ValidationError

    from tunelab.serve.server import serve_forever

    base = ServeConfig()
    if target.suffix in (".yaml", ".yml") or (target / "recipe.yaml").is_file():
        base = recipe_of(target, None).serve
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        cfg = ServeConfig.model_validate({**base.model_dump(), **given})
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"serve.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None
    serve_forever(target, cfg, say=lambda line: say(line))


def _flag_type(annotation: Any) -> type:
    """int or float for numeric keys (optional or not), str for the rest (literals included)."""
    if get_origin(annotation) is Literal:
        return str
    args = [a for a in (get_args(annotation) or (annotation,)) if a is not type(None)]
    return args[0] if args and args[0] in (int, float) else str


def _serve_verb():
    params = [inspect.Parameter("target", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=TargetArg)]
    for name, field in ServeConfig.model_fields.items():
        kind = _flag_type(field.annotation)
        option = typer.Option(f"--{name.replace('_', '-')}", help=field.description or "", show_default=False)
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
            )
        )

    def serve(target: Path, **flags: Any) -> None:
        _serve(target, **flags)

    serve.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    serve.__annotations__ = {p.name: p.annotation for p in params}
    serve.__doc__ = (
        "Serve a run's model with an OpenAI-compatible API (chat, completions, embeddings, classify). "
        "Flags override the recipe's serve section."
    )
    return friendly(serve)


serve = _serve_verb()
