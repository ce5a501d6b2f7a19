"""Prometheus metrics: one registry per service, every name ``x0_``-prefixed.

Every metric carries a ``service`` label so one Prometheus can tell the services
apart even when they share a job. The Grafana panels and alert rules use exactly
these names, so rename nothing without changing them too.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Round trips on a local broker take a few milliseconds; timeouts are seconds.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def new_registry() -> CollectorRegistry:
    """A fresh registry for one service (never the process-global default one)."""
    return CollectorRegistry(auto_describe=True)


class RequesterMetrics:
    """What the gateway's requester counts, by message type."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.requests = Counter(
            "x0_requester_requests_total",
            "Requests published.",
            ["service", "type"],
            registry=registry,
        )
        self.replies = Counter(
            "x0_requester_replies_total",
            "Replies matched to a waiting request, by outcome.",
            ["service", "type", "outcome"],
            registry=registry,
        )
        self.timeouts = Counter(
            "x0_requester_timeouts_total",
            "Requests whose deadline passed with no reply.",
            ["service", "type"],
            registry=registry,
        )
        self.rejected = Counter(
            "x0_requester_rejected_total",
            "Requests refused because too many were in flight.",
            ["service", "type"],
            registry=registry,
        )
        self.unmatched_replies = Counter(
            "x0_requester_unmatched_replies_total",
            "Replies dropped: 'late' (after the timeout) or 'unknown' (never asked here).",
            ["service", "reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "x0_requester_in_flight",
            "Requests waiting for a reply.",
            ["service"],
            registry=registry,
        )
        self.latency = Histogram(
            "x0_requester_latency_seconds",
            "Publish-to-reply latency.",
            ["service", "type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class ResponderMetrics:
    """What a worker's responder counts, by message type."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.handled = Counter(
            "x0_responder_handled_total",
            "Messages handled, by outcome: ok, or the error code replied.",
            ["service", "type", "outcome"],
            registry=registry,
        )
        self.failed = Counter(
            "x0_responder_failed_total",
            "Handler failures: declared errors, undeclared bugs and exhausted retries.",
            ["service", "type", "reason"],
            registry=registry,
        )
        self.retries = Counter(
            "x0_responder_retries_total",
            "Transient failures retried after a backoff.",
            ["service", "type"],
            registry=registry,
        )
        self.expired = Counter(
            "x0_responder_expired_total",
            "Requests dropped because their deadline had passed.",
            ["service", "type"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "x0_responder_dead_lettered_total",
            "Messages sent to the dead-letter topic.",
            ["service", "topic", "reason"],
            registry=registry,
        )
        self.duration = Histogram(
            "x0_responder_handler_duration_seconds",
            "Time spent in the handler.",
            ["service", "type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
