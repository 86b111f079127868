"""While a verb runs: the libraries below kept quiet, and tunelab's own log lines shown plainly."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator

from tunelab.cli.common import say

# Read by datasets when it is imported: set while a verb runs if it has not been imported yet (it is
# slow to import, and most verbs never need it).
_DATASETS_ENV = {"DATASETS_VERBOSITY": "error", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """transformers, huggingface_hub and datasets at verbosity error, without progress bars.

    Their load reports ("... LOAD REPORT ... MISSING") and weight-loading bars are noise in a CLI
    command (tunelab says what matters in its own lines); tunelab's training bar is its own tqdm and
    stays. Imported here, when a verb runs, so ``tunelab --help`` stays fast; restored afterwards
    (``main`` may run several commands in one process, as the tests do).
    """
    undo: list[Callable[[], object]] = []
    try:
        with contextlib.suppress(ImportError):
            import huggingface_hub.utils as hub
            import huggingface_hub.utils.logging as hub_logging

            level, bars = hub_logging.get_verbosity(), not hub.are_progress_bars_disabled()
            hub_logging.set_verbosity_error()
            hub.disable_progress_bars()
            undo.append(lambda: hub_logging.set_verbosity(level))
            if bars:
                undo.append(hub.enable_progress_bars)
        with contextlib.suppress(ImportError):
            import transformers.utils.logging as tf_logging

            tf_level, tf_bars = tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()
            tf_logging.set_verbosity_error()
            tf_logging.disable_progress_bar()
            undo.append(lambda: tf_logging.set_verbosity(tf_level))
            if tf_bars:
                undo.append(tf_logging.enable_progress_bar)
        if "datasets" in sys.modules:
            with contextlib.suppress(ImportError, AttributeError):
                import datasets.utils.logging as ds_logging

                ds_level, ds_bars = ds_logging.get_verbosity(), ds_logging.is_progress_bar_enabled()
                ds_logging.set_verbosity_error()
                ds_logging.disable_progress_bar()
                undo.append(lambda: ds_logging.set_verbosity(ds_level))
                if ds_bars:
                    undo.append(ds_logging.enable_progress_bar)
        else:
            for key, value in _DATASETS_ENV.items():
                if key not in os.environ:
                    os.environ[key] = value
                    undo.append(lambda key=key: os.environ.pop(key, None))
        yield
    finally:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()


class _SayHandler(logging.Handler):
    """tunelab's log records as lines on our console: INFO dim, WARNING and above yellow."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.WARNING:
                say(("warning: ", "yellow"), (message, "yellow"), highlight=False)
            else:
                say((message, "dim"), highlight=False)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def tunelab_log_lines() -> Iterator[None]:
    """Show the ``tunelab`` logger's INFO lines (e.g. "new classification head: ...") while a verb runs."""
    logger = logging.getLogger("tunelab")
    if any(isinstance(h, _SayHandler) for h in logger.handlers):
        yield  # already shown (a verb run from within another)
        return
    handler, level = _SayHandler(logging.INFO), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
