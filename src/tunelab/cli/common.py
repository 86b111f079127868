"""What every verb shares: loading the recipe, and the CLI's one error boundary.

:func:`handle_error` decides, for any exception a command ends with, whether it is the user's (a
message of one or two plain lines and exit code 2 for usage and recipe errors, 1 for the rest) or a
bug (re-raised: a traceback). ``--debug`` or ``TUNELAB_DEBUG=1`` adds the traceback to user errors.
Nothing here parses user text as rich markup: messages are :class:`rich.text.Text`.
"""

from __future__ import annotations

import difflib
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.text import Text

# emoji=False: a path such as ``a:smile:b`` must print as written (markup is never used for user text)
console = Console(stderr=True, emoji=False)
F = TypeVar("F", bound=Callable)

RecipeArg = Annotated[Path, typer.Argument(help="the recipe YAML file", show_default=False)]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="overrides such as train.epochs=2", show_default=False)
]
ForceOpt = Annotated[bool, typer.Option("--force", help="redo the stage even if its outputs are current")]

# What a failed command may leave in a run directory it created, and still have it removed.
RUN_DIR_STUBS = frozenset({"recipe.yaml", "manifest.json"})


@dataclass
class _Command:
    """What the boundary knows about the command under way (reset by ``main`` for each one)."""

    debug: bool = False
    recipe: Path | None = None
    model_name: str | None = None
    run_dirs: list[Path] = field(default_factory=list)  # of every recipe loaded
    # (run directory, topmost folder of its path that did not exist before the command)
    new_run_dirs: list[tuple[Path, Path]] = field(default_factory=list)


state = _Command()


def reset() -> None:
    global state
    state = _Command()


def set_debug(on: bool) -> None:
    state.debug = on
    if on:
        os.environ["TUNELAB_DEBUG"] = "1"  # for the checks below the CLI (``main`` restores it)


def debug_enabled() -> bool:
    return state.debug or bool(os.environ.get("TUNELAB_DEBUG"))


def load(recipe: Path, overrides: list[str] | None):
    from tunelab.config import load_recipe

    r = load_recipe(recipe, overrides or [])
    state.recipe, state.model_name = recipe, r.model.name
    _note_run_dir(Path(r.run_dir_path()).absolute())
    return r


def _note_run_dir(run_dir: Path) -> None:
    if run_dir in state.run_dirs:
        return
    state.run_dirs.append(run_dir)
    if run_dir.exists():
        return
    top = run_dir
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    state.new_run_dirs.append((run_dir, top))


def remove_new_run_dirs() -> None:
    """Remove run directories this command created that hold nothing but the recipe and manifest."""
    if os.environ.get("RANK", "0") != "0":
        return  # rank 0 wrote them; it decides
    for run_dir, top in state.new_run_dirs:
        try:
            if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= RUN_DIR_STUBS:
                continue
            for name in RUN_DIR_STUBS:
                (run_dir / name).unlink(missing_ok=True)
            folder = run_dir
            while True:  # and the empty parents it made (``runs/``), up to what existed before
                folder.rmdir()
                if folder == top:
                    break
                folder = folder.parent
        except OSError:
            continue  # not empty, or not ours to remove: leave it
    state.new_run_dirs.clear()


def say(*parts: str | tuple[str, str], **kwargs) -> None:
    """Print to stderr: strings as written, ``(text, style)`` pairs styled; never parsed as markup."""
    kwargs.setdefault("soft_wrap", True)
    console.print(Text.assemble(*parts), **kwargs)


# -- the error boundary ----------------------------------------------------------------------------


def _classes(module: str, *names: str) -> tuple[type[BaseException], ...]:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        return ()
    return tuple(c for c in (getattr(mod, n, None) for n in names) if isinstance(c, type))


def _click_classes() -> dict[str, tuple[type[BaseException], ...]]:
    """typer >= 0.2x raises its own copy of click's exceptions; older ones raise click's."""
    out: dict[str, tuple[type[BaseException], ...]] = {}
    for kind in ("UsageError", "ClickException", "Exit", "Abort"):
        out[kind] = (
            _classes("typer._click.exceptions", kind)
            + _classes("typer.exceptions", kind)
            + _classes("click.exceptions", kind)
        )
    out["ClickException"] += _classes("typer.exceptions", "TyperException")
    return out


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input: shown as a message, not a traceback."""
    from tunelab.config import RecipeError
    from tunelab.registry import UnknownPluginError
    from tunelab.runs import MissingArtifactError

    errors: list[type[BaseException]] = [
        RecipeError,
        MissingArtifactError,
        UnknownPluginError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        ValueError,
        ImportError,
    ]
    return tuple(errors)


def describe(exc: BaseException) -> tuple[int, list[str | Text]] | None:
    """(exit code, message lines) for a user error or a CLI exit; ``None`` for a bug."""
    from tunelab.config import RecipeError

    click = _click_classes()
    if isinstance(exc, click["Exit"]):
        return int(getattr(exc, "exit_code", 0) or 0), []
    if isinstance(exc, SystemExit):
        if isinstance(exc.code, int) or exc.code is None:
            return exc.code or 0, []
        return 1, [str(exc.code)]
    if isinstance(exc, click["Abort"]):
        return 1, ["aborted"]
    if isinstance(exc, click["UsageError"]):
        return 2, _usage_lines(exc)
    if isinstance(exc, click["ClickException"]):
        return int(getattr(exc, "exit_code", 1) or 1), [_click_message(exc)]
    if isinstance(exc, RecipeError):
        return 2, str(exc).splitlines()
    if isinstance(exc, OSError) and _from_model_loader(exc):
        return 1, _model_lines(exc)
    if isinstance(exc, OSError) and exc.errno is not None and exc.filename is not None:
        return 1, [_os_message(exc)]  # the OS refused a path: not a bug in tunelab
    if isinstance(exc, user_errors()):
        return 1, str(exc).splitlines() or [type(exc).__name__]
    return None


def handle_error(exc: BaseException) -> int | None:
    """Print the message for ``exc`` and return the exit code; ``None`` for a bug (the caller re-raises)."""
    described = describe(exc)
    if described is None:
        return None
    code, lines = described
    if code == 0 or not lines:
        return code
    remove_new_run_dirs()
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    first, *rest = lines
    say(("error: ", "bold red"), first, highlight=False)
    for line in rest:
        say(line, highlight=False)
    return code


def friendly(fn: F) -> F:
    """Route whatever the verb raises through :func:`handle_error` (bugs still raise).

    While the verb runs, the libraries below are quiet (:func:`quiet_libraries`) and tunelab's own
    log lines show as dim lines (:func:`tunelab_log_lines`).
    """

    @wraps(fn)
    def wrapper(*args, **kwargs):
        from tunelab.cli.quiet import quiet_libraries, tunelab_log_lines

        try:
            with quiet_libraries(), tunelab_log_lines():
                return fn(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _click_classes()["Exit"]):
                raise
            code = handle_error(exc)
            if code is None:
                raise  # a bug: its traceback
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


def _click_message(exc: BaseException) -> str:
    fmt = getattr(exc, "format_message", None)
    return str(fmt() if callable(fmt) else exc)


def _usage_lines(exc: BaseException) -> list[str | Text]:
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "tunelab"
    if type(exc).__name__ == "NoArgsIsHelpError":
        helptext = _click_message(exc).strip()  # typer with rich has printed the help already
        if helptext:
            print(helptext, file=sys.stderr)
        return [f"no command given: name one, e.g. `{path} run recipe.yaml` (`{path} --help` lists them)"]
    lines: list[str | Text] = [_click_message(exc)]
    usage = ctx.get_usage().strip() if ctx is not None else ""
    lines.append(f"{usage}  (`{path} --help` for more)" if usage else f"`{path} --help` for usage")
    return lines


_OS_HINTS: list[tuple[type[OSError], str]] = [
    (NotADirectoryError, "part of this path is a regular file, not a folder"),
    (IsADirectoryError, "is a folder, but a file is needed here"),
    (FileExistsError, "a file is in the way: a folder is needed here"),
    (PermissionError, "permission denied"),
    (FileNotFoundError, "no such file or folder"),
]


def _os_message(exc: OSError) -> str:
    """``path: what is wrong; what to do`` for an OS error on a path."""
    what = next((h for cls, h in _OS_HINTS if isinstance(exc, cls)), exc.strerror or str(exc))
    path = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    where = _run_dir_hint(Path(str(exc.filename)))
    todo = where or (
        "check its permissions, or choose another path"
        if isinstance(exc, PermissionError)
        else "check the path, or choose another one"
    )
    return f"{path}: {what}; {todo}"


def _run_dir_hint(path: Path) -> str:
    try:
        path = path.absolute()
    except OSError:
        return ""
    for run_dir in state.run_dirs:
        if path == run_dir or path in run_dir.parents or run_dir in path.parents:
            where = f" in {state.recipe}" if state.recipe else ""
            which = "" if path == run_dir else f" (the run directory is {run_dir})"
            return f"change run.output_dir (or run.name){where}{which}"
    return ""


# -- models that transformers / huggingface_hub could not load ------------------------------------


def _loader_frames(exc: BaseException):
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in ("transformers", "huggingface_hub"):
            yield tb.tb_frame
        tb = tb.tb_next


def _from_model_loader(exc: BaseException) -> bool:
    """An OSError raised by transformers / huggingface_hub themselves (not the OS on a path)."""
    if getattr(exc, "errno", None) is not None or exc.__traceback__ is None:
        return False
    last = exc.__traceback__
    while last.tb_next is not None:
        last = last.tb_next
    module = str(last.tb_frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in ("transformers", "huggingface_hub")


def _model_name(exc: BaseException) -> str | None:
    for frame in _loader_frames(exc):
        for var in ("pretrained_model_name_or_path", "path_or_repo_id", "repo_id"):
            value = frame.f_locals.get(var)
            if isinstance(value, str | os.PathLike):
                return str(value)
    return state.model_name


def _model_lines(exc: BaseException) -> list[str | Text]:
    name = _model_name(exc) or "?"
    key = "model.name" if name == state.model_name else "model"
    where = f" in {state.recipe}" if state.recipe and key == "model.name" else ""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    folder = Path(name).expanduser()
    if folder.is_dir():
        files = {p.name for p in folder.iterdir()}
        if not any(f.endswith(".safetensors") for f in files) and any(
            f.endswith((".bin", ".pt", ".pth")) for f in files
        ):
            return [
                f"{key} {name!r}{where}: the folder has only pickle weights and no .safetensors; set "
                "model.allow_pickle: true to load them (unpickling can run code), or convert the weights",
                f"(transformers: {cause})",
            ]
        return [f"{key} {name!r}{where}: the folder could not be loaded as a model", f"({cause})"]
    from tunelab.models.bundled import ALIASES, BUNDLED_MODELS

    offline = " offline (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
    close = difflib.get_close_matches(name, [*BUNDLED_MODELS, *ALIASES], n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return [
        f"{key} {name!r}{where} is not a bundled alias, a local folder, or a hub id reachable{offline}; "
        f"{guess}see `tunelab models`",
        f"({cause})",
    ]


def show_result(result) -> None:
    """One line per stage: skipped or done, with its headline figures."""
    if result.skipped:
        say((f"{result.stage}: up to date (use --force to redo)", "dim"))
        return
    figures = ", ".join(f"{k}={_fmt(v)}" for k, v in result.metrics.items() if not isinstance(v, list))
    say((f"{result.stage}: done", "green"), f" {figures}", highlight=False)


def _fmt(v) -> str:
    if isinstance(v, dict) and "value" in v:
        lo, hi = v.get("low"), v.get("high")
        ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        return f"{v['value']:.4f}{ci}"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)
