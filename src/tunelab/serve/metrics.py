"""Prometheus metrics of one server: requests, latency, tokens, queue depth and batch sizes.

Each app gets its own registry, so two servers in one process (tests) never share counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerMetrics:
    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tunelab_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.latency = Histogram(
            "tunelab_request_seconds",
            "time from request to answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "tunelab_tokens", "tokens processed", ["kind"], registry=r
        )  # prompt | completion
        self.batch_size = Histogram(
            "tunelab_batch_size",
            "requests (or texts) per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.queue = Gauge("tunelab_queue_depth", "requests waiting for the model", registry=r)
        self.queue.set_function(queue_depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
