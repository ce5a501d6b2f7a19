"""What the gateway's plain ASGI middlewares share.

They are plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which adds a task
and a memory stream to every request; each wraps ``send`` to see the response start.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ResponseWatch:
    """``send``, noting the response's status as it starts (500 until then: a request
    whose app raised before answering counts as a server error)."""

    __slots__ = ("_send", "started", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        await self._send(message)


class HttpMiddleware:
    """A middleware of HTTP requests: other scopes (lifespan) pass straight through to
    ``app``; subclasses implement :meth:`handle`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request through ``app``."""
        raise NotImplementedError
