"""The limits' metrics: what was refused, and when the local limiter stood in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class LimitMetrics:
    """Counters of rate limiting, idempotency and the concurrency limit."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.rate_limit = Counter(
            "x0_rate_limit_decisions_total",
            "Rate-limit decisions by class, outcome and who decided.",
            ["service", "rate_class", "outcome", "source"],
            registry=registry,
        )
        self.idempotency = Counter(
            "x0_idempotency_requests_total",
            "Requests with an Idempotency-Key, by outcome.",
            ["service", "outcome"],
            registry=registry,
        )
        self.overloaded = Counter(
            "x0_http_overloaded_total",
            "Requests answered 503 because too many were being served.",
            ["service"],
            registry=registry,
        )
