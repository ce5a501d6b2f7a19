"""HTTP RED metrics (rate, errors, duration) by route template and status.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which
adds a task and a memory stream to every request.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from x0_common.metrics import MetricFactory


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


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label, so random URLs cannot explode the series.
            template = getattr(route, "path", "<unmatched>")
            method = scope["method"]
            self.metrics.requests.labels(self.metrics.service, method, template, str(status)).inc()
            self.metrics.duration.labels(self.metrics.service, method, template).observe(
                time.perf_counter() - started
            )
