"""A real uvicorn server, as ``python -m x0_gateway`` configures it, against raw sockets.

A client that sends its headers or its body too slowly is answered 408 and cut off
within a bounded time; headers past the size cap get 431; past the concurrency
limit a request gets 503 with Retry-After at once instead of queueing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from x0_common.testing.processes import free_port
from x0_gateway.app import create_app
from x0_gateway.limits.connections import ConnectionSettings, server_config
from x0_gateway.limits.policy import RateLimitSettings

from .http_support import unit_settings
from .limits_support import authenticate_by_test_headers

pytestmark = [pytest.mark.unit, pytest.mark.security]

DEADLINE = 1.0


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """The gateway app behind the guarded uvicorn server, in a thread (no lifespan)."""
    connections = ConnectionSettings(
        header_timeout_seconds=DEADLINE,
        body_timeout_seconds=DEADLINE,
        keep_alive_timeout_seconds=1,
        max_header_bytes=8 * 1024,
        max_concurrent_requests=1,
    )
    settings = unit_settings(
        rate_limits=RateLimitSettings(enabled=False),
        connections=connections,
    )
    app = authenticate_by_test_headers(create_app(settings))
    chosen = free_port()
    config = server_config(app, "127.0.0.1", chosen, connections)
    config.lifespan = "off"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        assert time.monotonic() - started < 10, "uvicorn did not start"
        time.sleep(0.02)
    yield chosen
    server.should_exit = True
    thread.join(timeout=10)


async def answer_of(reader: asyncio.StreamReader, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    async with asyncio.timeout(limit):
        data = await reader.read()
    return data, time.monotonic() - started


def unfinished_post(declared_length: int) -> bytes:
    """A POST's headers declaring a ``declared_length`` body, and its first byte only."""
    return (
        b"POST /v1/crypto/signatures/sign HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % declared_length
    )


async def test_a_normal_request_is_served(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = await answer_of(reader)
    assert data.startswith(b"HTTP/1.1 200")
    assert b"server: uvicorn" not in data.lower()
    writer.close()


async def test_headers_sent_one_line_at_a_time_are_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()

    async def trickle() -> None:
        for number in range(20):
            await asyncio.sleep(0.3)
            if writer.is_closing():
                return
            writer.write(f"X-Slow-{number}: 1\r\n".encode())

    trickling = asyncio.create_task(trickle())
    data, _ = await answer_of(reader)
    elapsed = time.monotonic() - started
    trickling.cancel()
    assert data.startswith(b"HTTP/1.1 408")
    assert b"application/problem+json" in data
    assert b"request_timeout" in data
    assert DEADLINE * 0.8 < elapsed < DEADLINE + 1.5
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data, elapsed = await answer_of(reader)
    assert data.startswith(b"HTTP/1.1 408")
    assert elapsed < DEADLINE + 1.5
    writer.close()


async def test_one_byte_of_a_declared_body_is_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(unfinished_post(1000))
    data, elapsed = await answer_of(reader)
    assert data.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in data
    assert elapsed < DEADLINE + 1.5
    writer.close()


async def test_oversized_headers_get_431(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
    writer.write(b"X-Big: " + b"a" * 16 * 1024 + b"\r\n")
    data, _ = await answer_of(reader)
    assert data.startswith(b"HTTP/1.1 431")
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    data, elapsed = await answer_of(reader)
    assert data.startswith(b"HTTP/1.1 200")
    assert elapsed < 3
    writer.close()


async def test_past_the_concurrency_limit_503_with_retry_after_at_once(port: int) -> None:
    # The first request holds the one slot while it waits for its body.
    holder_reader, holder = await asyncio.open_connection("127.0.0.1", port)
    holder.write(unfinished_post(100))
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/crypto/algorithms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, elapsed = await answer_of(reader)
    assert data.startswith(b"HTTP/1.1 503")
    assert b"retry-after: 1" in data.lower()
    assert b"overloaded" in data
    assert elapsed < 0.5
    # Probes are not counted: health still answers.
    probe_reader, probe = await asyncio.open_connection("127.0.0.1", port)
    probe.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await answer_of(probe_reader))[0].startswith(b"HTTP/1.1 200")
    for stream in (holder, writer, probe):
        stream.close()
    await answer_of(holder_reader)
