"""Name checks: cleaning steps, and the dotted-path losses and strategies the schema cannot import.

Plug-in modules (``plugins``) are imported by :func:`tunelab.config.load_recipe` already, and the
built-in loss and strategy names are part of the schema; what is left is whether each dotted path
imports and whether a loss scores the outputs of the recipe's task.
"""

from __future__ import annotations

from tunelab.config.train import PluginSpec
from tunelab.preflight.context import Context, did_you_mean
from tunelab.registry import Registry, UnknownPluginError


def check(ctx: Context) -> None:
    _check_clean_steps(ctx)
    _check_loss(ctx)
    for i, spec in enumerate(ctx.recipe.train.strategies):
        if isinstance(spec, PluginSpec):
            _imports(ctx, f"train.strategies.{i}", "strategy", spec.name)


def _dotted(name: str) -> bool:
    return "." in name or ":" in name


def _imports(ctx: Context, key: str, kind: str, path: str) -> object | None:
    """The object a dotted path names, or None after reporting why it does not import."""
    try:
        return Registry(kind).get(path)  # an empty registry: ``get`` imports the dotted path
    except UnknownPluginError as exc:
        ctx.findings.problem(key, str(exc))
    except Exception as exc:  # the module imported but raised while running its top level
        ctx.findings.problem(key, f"importing {kind} {path!r} failed: {type(exc).__name__}: {exc}")
    return None


def _check_clean_steps(ctx: Context) -> None:
    from tunelab.data.clean import CLEAN_STEPS

    for i, name in enumerate(ctx.recipe.data.clean.steps):
        key = f"data.clean.steps.{i}"
        if name in CLEAN_STEPS:
            continue
        if _dotted(name):
            found = _imports(ctx, key, "cleaning step", name)
            if found is not None and not callable(found):
                ctx.findings.problem(key, f"cleaning step {name!r} is not a function (a step factory)")
            continue
        ctx.findings.problem(
            key,
            f"unknown cleaning step {name!r}{did_you_mean(name, CLEAN_STEPS.names())}; known: "
            f"{', '.join(CLEAN_STEPS.names())} (or a dotted path such as 'pkg.module:factory')",
        )


def _check_loss(ctx: Context) -> None:
    spec = ctx.recipe.train.loss
    if spec is None:
        return
    if isinstance(spec, PluginSpec):
        cls = _imports(ctx, "train.loss", "loss", spec.name)
        if cls is None:
            return
    else:
        from tunelab.tasks.losses import LOSSES

        cls = LOSSES.get(spec.name)
    if ctx.task is None:
        return
    want = ctx.task.loss_kind
    got = getattr(cls, "kind", want)
    if got != want:
        from tunelab.tasks.losses import LOSSES

        fits = [n for n in LOSSES.names() if getattr(LOSSES.get(n), "kind", None) == want]
        ctx.findings.problem(
            "train.loss",
            f"loss {spec.name!r} scores {got} outputs, but task {ctx.task_name} trains on {want} outputs: "
            f"use one of {fits}",
        )
