"""The batcher: same-key work runs together, the queue is bounded, a gone client frees its place."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tunelab.serve.batching import Batcher, QueueFull, Work


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_work_sent_together_runs_in_one_batch_per_key():
    calls: list[tuple] = []

    def runner(key, payloads):
        calls.append((key, list(payloads)))
        return [p * 10 for p in payloads]

    async def main():
        b = Batcher(runner, max_batch=4, wait_s=0.05, queue_size=16)
        b.start()
        works = [b.submit(Work("a" if i % 2 else "b", i)) for i in range(6)]
        results = [await w.future for w in works]
        await b.stop()
        return results

    assert _run(main()) == [i * 10 for i in range(6)]
    assert sorted((k, sorted(p)) for k, p in calls) == [("a", [1, 3, 5]), ("b", [0, 2, 4])]


def test_batches_hold_at_most_max_batch_and_keep_arrival_order():
    sizes: list[list[int]] = []

    def runner(key, payloads):
        sizes.append(list(payloads))
        return payloads

    async def main():
        b = Batcher(runner, max_batch=3, wait_s=0.02, queue_size=16)
        b.start()
        works = [b.submit(Work("k", i)) for i in range(7)]
        await asyncio.gather(*(w.future for w in works))
        await b.stop()

    _run(main())
    assert sizes == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_full_queue_refuses_and_a_cancelled_request_is_dropped_unrun():
    gate = threading.Event()
    ran: list[int] = []

    def runner(key, payloads):
        gate.wait(timeout=10)
        ran.extend(payloads)
        return payloads

    async def main():
        b = Batcher(runner, max_batch=1, wait_s=0, queue_size=2)
        b.start()
        first = b.submit(Work("k", 1))
        await asyncio.sleep(0.05)  # the worker took it: the queue is empty again
        second, third = b.submit(Work("k", 2)), b.submit(Work("k", 3))
        with pytest.raises(QueueFull):
            b.submit(Work("k", 4))
        second.cancel()  # its client went away while it waited
        gate.set()
        await first.future
        await third.future
        await b.stop()

    _run(main())
    assert ran == [1, 3]


def test_a_failing_batch_fails_its_requests_only():
    def runner(key, payloads):
        if key == "bad":
            raise RuntimeError("boom")
        return payloads

    async def main():
        b = Batcher(runner, max_batch=4, wait_s=0, queue_size=8)
        b.start()
        bad, good = b.submit(Work("bad", 1)), b.submit(Work("good", 2))
        with pytest.raises(RuntimeError, match="boom"):
            await bad.future
        assert await good.future == 2
        await b.stop()

    _run(main())
