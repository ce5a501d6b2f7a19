"""Refuse request bodies above a size with 413, before anything reads them whole.

A streamed body (no Content-Length) is counted as it arrives; past the limit the
read raises an ``HTTPException(413)``: FastAPI passes that on from a body read
(any other exception there becomes its own 400), and the problem handlers answer it.
Either way the audit middleware records a denied request (no body content).
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from x0_gateway.asgi import HttpMiddleware, ResponseWatch
from x0_gateway.audit.middleware import TOO_LARGE, note_refusal


class _TooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")


class BodyLimitMiddleware(HttpMiddleware):
    """413 problem+json for bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge(self.max_bytes)
            return message

        response = ResponseWatch(send)
        try:
            await self.app(scope, counting_receive, response)
        except _TooLarge:
            if not response.started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        # The audit middleware records it as denied (never with the body).
        note_refusal(scope, TOO_LARGE)
        body = json.dumps(
            {
                "type": "urn:x0:problem:too_large",
                "title": f"the request body is larger than {self.max_bytes} bytes",
                "status": 413,
                "code": "too_large",
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/problem+json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
