"""Prometheus metrics: one registry per service, every name ``x0_``-prefixed.

Every metric carries a ``service`` label so one Prometheus can tell the services
apart even when they share a job. The Grafana panels and alert rules use exactly
these names, so rename nothing without changing them too.
"""

from __future__ import annotations

from collections.abc import Sequence

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


class MetricFactory:
    """Declares metrics in one registry, each labelled ``service`` before its own labels.

    The observability contract gives every metric a ``service`` label, first; holding
    that rule here lets each declaration name only what it adds.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def _labels(self, labels: tuple[str, ...]) -> list[str]:
        return ["service", *labels]

    def counter(self, name: str, documentation: str, *labels: str) -> Counter:
        """A counter labelled ``service`` and then ``labels``."""
        return Counter(name, documentation, self._labels(labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        """A gauge labelled ``service`` and then ``labels``."""
        return Gauge(name, documentation, self._labels(labels), registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        *labels: str,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        """A histogram labelled ``service`` and then ``labels``; latency buckets unless told."""
        return Histogram(
            name, documentation, self._labels(labels), buckets=buckets, registry=self.registry
        )


class RequesterMetrics:
    """What the gateway's requester counts, by message type."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        declare = MetricFactory(registry)
        self.requests = declare.counter(
            "x0_requester_requests_total", "Requests published.", "type"
        )
        self.replies = declare.counter(
            "x0_requester_replies_total",
            "Replies matched to a waiting request, by outcome.",
            "type",
            "outcome",
        )
        self.timeouts = declare.counter(
            "x0_requester_timeouts_total", "Requests whose deadline passed with no reply.", "type"
        )
        self.rejected = declare.counter(
            "x0_requester_rejected_total",
            "Requests refused because too many were in flight.",
            "type",
        )
        self.unmatched_replies = declare.counter(
            "x0_requester_unmatched_replies_total",
            "Replies dropped: 'late' (after the timeout) or 'unknown' (never asked here).",
            "reason",
        )
        self.in_flight = declare.gauge("x0_requester_in_flight", "Requests waiting for a reply.")
        self.latency = declare.histogram(
            "x0_requester_latency_seconds", "Publish-to-reply latency.", "type"
        )


class ResponderMetrics:
    """What a worker's responder counts, by message type."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        declare = MetricFactory(registry)
        self.handled = declare.counter(
            "x0_responder_handled_total",
            "Messages handled, by outcome: ok, or the error code replied.",
            "type",
            "outcome",
        )
        self.failed = declare.counter(
            "x0_responder_failed_total",
            "Handler failures: declared errors, undeclared bugs and exhausted retries.",
            "type",
            "reason",
        )
        self.retries = declare.counter(
            "x0_responder_retries_total", "Transient failures retried after a backoff.", "type"
        )
        self.expired = declare.counter(
            "x0_responder_expired_total",
            "Requests dropped because their deadline had passed.",
            "type",
        )
        self.dead_lettered = declare.counter(
            "x0_responder_dead_lettered_total",
            "Messages sent to the dead-letter topic.",
            "topic",
            "reason",
        )
        self.duration = declare.histogram(
            "x0_responder_handler_duration_seconds", "Time spent in the handler.", "type"
        )
