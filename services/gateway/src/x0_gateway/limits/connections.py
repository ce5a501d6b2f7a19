"""Connections a slow or oversized client cannot hold: uvicorn with deadlines.

uvicorn bounds only the idle time between two requests (``timeout_keep_alive``).
A client that opens a connection and sends nothing, sends one header line every few
seconds (slowloris), or one byte of a declared 1,000-byte body, holds its connection
and its task for ever, and httptools sets no limit on the size of the headers.
:class:`GuardedHttpToolsProtocol` adds what is missing:

- the request line and headers must arrive within ``header_timeout_seconds`` of the
  connection (or of the first byte of the next request on a kept-alive one), and
  take at most ``max_header_bytes`` (431 past it);
- the body must arrive within ``body_timeout_seconds`` of the headers.

Past a deadline the client gets 408 problem+json (when no answer has started) and
the connection is closed; the application sees a disconnect. ``server_config`` is
the one uvicorn configuration, used by ``python -m x0_gateway`` and by the tests.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from pydantic import BaseModel, Field
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class ConnectionSettings(BaseModel):
    """``X0_GATEWAY_CONNECTIONS__*``: deadlines and bounds of one replica's HTTP server."""

    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # A 4 MiB body at 2 Mbit/s takes ~17 s.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keep_alive_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Requests served at once; past it 503 problem+json with Retry-After at once.
    max_concurrent_requests: int = Field(default=1024, gt=0)
    # uvicorn's own bound on connections and tasks (its 503 is text/plain): a backstop
    # above max_concurrent_requests, so that idle kept-alive connections are bounded too.
    max_connections: int = Field(default=4096, gt=0)


def _raw_problem(status: int, reason: str, code: str, title: str) -> bytes:
    body = json.dumps(
        {"type": f"urn:x0:problem:{code}", "title": title, "status": status, "code": code}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        "x-content-type-options: nosniff\r\n"
        "cache-control: no-store\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a header size cap."""

    header_timeout = 10.0
    body_timeout = 30.0
    max_header_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large", "headers_too_large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_headers:
            self._start_headers()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _start_headers(self) -> None:
        self._in_headers = True
        self._header_bytes = 0
        self._arm(self.header_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        self._refuse(408, "Request Timeout", "request_timeout")

    def _refuse(self, status: int, reason: str, code: str) -> None:
        self._disarm()
        self._in_headers = False
        if self.transport.is_closing():
            return
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and cycle.response_complete:
            cycle = None  # the previous request's: this one has not started
        if cycle is None or not cycle.response_started:
            title = "the request was not received in time" if status == 408 else reason.lower()
            self.transport.write(_raw_problem(status, reason, code, title))
        if cycle is not None:
            # The application's receive() now returns http.disconnect; its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def guarded_protocol(settings: ConnectionSettings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with this replica's deadlines."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": settings.header_timeout_seconds,
            "body_timeout": settings.body_timeout_seconds,
            "max_header_bytes": settings.max_header_bytes,
        },
    )


def server_config(app: Any, host: str, port: int, settings: ConnectionSettings) -> uvicorn.Config:
    """The gateway's uvicorn configuration."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings),
        timeout_keep_alive=int(settings.keep_alive_timeout_seconds),
        limit_concurrency=settings.max_connections,
        log_config=None,
        access_log=False,
        # No "server: uvicorn": nothing to fingerprint.
        server_header=False,
    )
