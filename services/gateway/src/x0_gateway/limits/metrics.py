"""The limits' metrics: what was refused, and when the local limiter stood in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from x0_common.metrics import MetricFactory


class LimitMetrics:
    """Counters of rate limiting, idempotency and the concurrency limit."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        declare = MetricFactory(registry)
        self.rate_limit = declare.counter(
            "x0_rate_limit_decisions_total",
            "Rate-limit decisions by class, outcome and who decided.",
            "rate_class",
            "outcome",
            "source",
        )
        self.idempotency = declare.counter(
            "x0_idempotency_requests_total",
            "Requests with an Idempotency-Key, by outcome.",
            "outcome",
        )
        self.overloaded = declare.counter(
            "x0_http_overloaded_total", "Requests answered 503 because too many were being served."
        )
