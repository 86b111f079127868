"""The training log: ``state.history`` in memory and ``train_log.jsonl`` on disk, one entry a line.

Entries: ``{"step", "epoch", "loss", "lr", "tokens_per_s"}`` every ``log_every`` steps,
``{"step", "validation"}`` after each evaluation and ``{"step", "stopped"}`` when a strategy stops.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.runs import atomic_write_jsonl

if TYPE_CHECKING:
    from tunelab.train.session import Session


class TrainLog:
    """Appends to the history and, on the main process, to the log file and ``on_append`` (a tracker)."""

    def __init__(
        self,
        path: Path,
        history: list[dict[str, Any]],
        main: bool,
        on_append: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.path, self.history, self.main, self.on_append = path, history, main, on_append

    def restart(self) -> None:
        """Rewrite the file from the history: a resumed run drops the lines logged after its checkpoint."""
        if self.main:
            atomic_write_jsonl(self.path, self.history)

    def append(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)
        if self.main:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            if self.on_append is not None:
                self.on_append(entry)


class LossWindow:
    """The training losses since the last log line, whose mean that line reports.

    The sum and count live in the trainer state, so a checkpoint between two log lines carries
    them and the resumed run's next line averages the same steps as an uninterrupted run's.
    """

    def __init__(self, state: Any) -> None:
        self.state = state

    def add(self, loss: float) -> None:
        self.state.window_loss += loss
        self.state.window_steps += 1

    def take(self) -> float:
        mean = self.state.window_loss / self.state.window_steps
        self.state.window_loss, self.state.window_steps = 0.0, 0
        return mean


def log_progress(run: Session, window: LossWindow, tokens_per_s: float, epoch_batches: int) -> None:
    """Every ``log_every`` steps (and at the last): the window's mean loss, the rate and tokens/s."""
    state = run.state
    if not run.due(run.cfg.log_every):
        return
    run.log.append(
        {
            "step": state.global_step,
            "epoch": round(state.epoch + state.batch_in_epoch / epoch_batches, 4),
            "loss": window.take(),
            "lr": run.scheduler.get_last_lr()[0],
            "tokens_per_s": tokens_per_s,
        }
    )
