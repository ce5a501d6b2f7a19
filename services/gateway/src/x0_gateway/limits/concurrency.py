"""A bound on requests served at once: past it, 503 problem+json with ``Retry-After``.

Without it a burst queues without bound: every request holds its body in memory and
waits its turn for the event loop, and all of them answer late instead of some at
once. Health and metrics are not counted, so probes still answer under load.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from x0_gateway.audit.middleware import OVERLOADED, note_refusal
from x0_gateway.limits.metrics import LimitMetrics

_UNCOUNTED = ("/health/", "/metrics")


class ConcurrencyLimitMiddleware:
    """Serve at most ``max_requests`` HTTP requests at once; refuse the rest at once."""

    def __init__(
        self, app: ASGIApp, max_requests: int, metrics: LimitMetrics, retry_after: int = 1
    ) -> None:
        self.app = app
        self.max_requests = max_requests
        self.metrics = metrics
        self.retry_after = retry_after
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_UNCOUNTED):
            await self.app(scope, receive, send)
            return
        if self.active >= self.max_requests:
            self.metrics.overloaded.labels(self.metrics.service).inc()
            await self._refuse(scope, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1

    async def _refuse(self, scope: Scope, send: Send) -> None:
        # The audit middleware, outside this one, records it as denied.
        note_refusal(scope, OVERLOADED)
        body = json.dumps(
            {
                "type": "urn:x0:problem:overloaded",
                "title": "too many requests are being served; retry shortly",
                "status": 503,
                "code": OVERLOADED,
                "instance": scope.get("path", ""),
                "details": {"limit": self.max_requests, "retry_after_seconds": self.retry_after},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"retry-after", str(self.retry_after).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
