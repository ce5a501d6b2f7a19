"""HTTP RED metrics (rate, errors, duration) by route template and status.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which
adds a task and a memory stream to every request.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from x0_common.metrics import MetricFactory
from x0_gateway.asgi import HttpMiddleware, ResponseWatch


class HttpMetrics:
    """The gateway's HTTP metrics."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        declare = MetricFactory(registry)
        self.requests = declare.counter(
            "x0_http_requests_total", "HTTP requests answered.", "method", "route", "status"
        )
        self.duration = declare.histogram(
            "x0_http_request_duration_seconds", "Time to answer an HTTP request.", "method", "route"
        )


class HttpMetricsMiddleware(HttpMiddleware):
    """Counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        response = ResponseWatch(send)
        try:
            await self.app(scope, receive, response)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label, so random URLs cannot explode the series.
            template = getattr(route, "path", "<unmatched>")
            method = scope["method"]
            self.metrics.requests.labels(
                self.metrics.service, method, template, str(response.status)
            ).inc()
            self.metrics.duration.labels(self.metrics.service, method, template).observe(
                time.perf_counter() - started
            )
