"""Dynamic batching: requests that arrive together run together, on one worker thread.

Requests wait in a bounded queue (full: :class:`QueueFull`, which the app answers with 429 and
``Retry-After``). The worker takes the oldest request, waits up to ``wait_s`` for more of the
same kind (same key: the same decoding settings, or classify, or embed), runs up to
``max_batch`` of them in one call on its thread, and resolves each request's future. A request
whose client went away before its batch started is dropped from the queue; one that is running
is told through its ``cancelled`` flag (generation then stops its rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tunelab.serve")


class QueueFull(Exception):
    """The queue holds its maximum of waiting requests."""


@dataclass
class Work:
    key: Hashable  # only work of one key shares a batch
    payload: Any  # handed to the runner (a GenJob, or a list of texts)
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    size: int = 1  # how much of a batch it fills (texts of a classify request)

    def cancel(self) -> None:
        if hasattr(self.payload, "cancelled"):
            self.payload.cancelled = True
        if not self.future.done():
            self.future.cancel()


class Batcher:
    """Collects :class:`Work` into batches for ``runner(key, payloads) -> results`` (one per payload)."""

    def __init__(
        self,
        runner: Callable[[Hashable, list[Any]], list[Any]],
        *,
        max_batch: int,
        wait_s: float,
        queue_size: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.runner, self.max_batch, self.wait_s, self.queue_size = runner, max_batch, wait_s, queue_size
        self.on_batch = on_batch
        self.pending: deque[Work] = deque()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunelab-model")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.running = 0  # requests in the batch under way

    @property
    def depth(self) -> int:
        return len(self.pending)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for work in self.pending:
            work.cancel()
        self.pending.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, work: Work) -> Work:
        """Queue ``work`` (raises :class:`QueueFull` when the queue is full); await ``work.future``."""
        if len(self.pending) >= self.queue_size:
            raise QueueFull
        self.pending.append(work)
        assert self._wake is not None, "Batcher.start() first"
        self._wake.set()
        return work

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            self._drop_cancelled()
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            key = self.pending[0].key
            if self.wait_s > 0 and self._count(key) < self.max_batch:
                await asyncio.sleep(self.wait_s)  # let requests sent together arrive
                self._drop_cancelled()
                if not self.pending:
                    continue
                key = self.pending[0].key
            batch = self._take(key)
            self.running = len(batch)
            if self.on_batch is not None:
                self.on_batch(sum(w.size for w in batch))
            try:
                results = await loop.run_in_executor(
                    self.executor, self.runner, key, [w.payload for w in batch]
                )
            except Exception as exc:  # the runner's failure is each request's failure
                log.exception("batch of %d failed", len(batch))
                for work in batch:
                    if not work.future.done():
                        work.future.set_exception(exc)
            else:
                for work, result in zip(batch, results, strict=True):
                    if not work.future.done():
                        work.future.set_result(result)
            finally:
                self.running = 0

    def _count(self, key: Hashable) -> int:
        return sum(w.size for w in self.pending if w.key == key)

    def _take(self, key: Hashable) -> list[Work]:
        """The oldest work of ``key``, up to ``max_batch`` in size (at least one), in arrival order."""
        batch, rest, filled = [], deque(), 0
        while self.pending:
            work = self.pending.popleft()
            if work.key == key and (not batch or filled + work.size <= self.max_batch):
                batch.append(work)
                filled += work.size
            else:
                rest.append(work)
        self.pending = rest
        return batch

    def _drop_cancelled(self) -> None:
        if any(w.future.done() for w in self.pending):
            self.pending = deque(w for w in self.pending if not w.future.done())
