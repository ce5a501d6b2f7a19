"""A worker process: the FastStream app plus ``/metrics`` and ``/health/*`` over HTTP.

Every worker service builds its app here, so the operational endpoints look the
same everywhere: ``/health/live`` (the loop answers), ``/health/ready`` (each
responder's consumer holds partitions and every dependency check passes) and
``/metrics`` (the service's own registry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, make_asgi_app

from x0_common.contract.operation import Operation
from x0_common.kafka.responder import Responder

if TYPE_CHECKING:
    # Types only: the ASGI protocol as Starlette spells it.
    from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Hook = Callable[[], Awaitable[None]]


class Consumer(Protocol):
    """What the app needs of a consumer: a :class:`~x0_common.kafka.Responder`, or
    another consumer on the broker (the telemetry ingest's batch consumer)."""

    @property
    def assigned(self) -> bool:
        """True while the consumer's group gives it partitions."""

    async def ensure_topics(self) -> None:
        """Create the consumer's topics if missing."""

    async def close(self) -> None:
        """Finish or hand back work in progress; called before the broker stops."""


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _passes(check: Check, timeout: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return await check()
    except Exception:  # noqa: BLE001 - any failure of a dependency means not ready
        return False


class _Live:
    async def __call__(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        await _send_json(send, 200, {"status": "ok"})


class _Ready:
    def __init__(self, responders: Sequence[Consumer], checks: Mapping[str, Check]) -> None:
        self._responders = responders
        self._checks = checks

    async def __call__(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        results = {"consumer_assigned": all(r.assigned for r in self._responders)}
        for name, check in self._checks.items():
            results[name] = await _passes(check)
        status = 200 if all(results.values()) else 503
        await _send_json(send, status, {"ready": status == 200, "checks": results})


def build_worker_app(
    broker: KafkaBroker,
    *,
    registry: CollectorRegistry,
    responders: Sequence[Consumer],
    checks: Mapping[str, Check],
    operations: Iterable[Operation] = (),
    on_startup: Sequence[Hook] = (),
    after_shutdown: Sequence[Hook] = (),
) -> AsgiFastStream:
    """The worker's ASGI app; run it with uvicorn.

    Start-up runs ``on_startup`` (open pools, migrate), then creates each responder's
    topics, then starts the broker. Shutdown commits each responder's finished
    offsets before the broker stops, then runs ``after_shutdown`` (close pools).
    Every operation of ``operations`` on a responder's topic must have its handler.
    """
    # The self-check: a row of the contract whose handler is missing stops the start.
    required = tuple(operations)
    for responder in responders:
        if isinstance(responder, Responder):
            responder.require(required)
    ensure_topics = [responder.ensure_topics for responder in responders]
    app = AsgiFastStream(
        broker,
        asgi_routes=[
            ("/metrics", make_asgi_app(registry)),
            ("/health/live", _Live()),
            ("/health/ready", _Ready(responders, checks)),
        ],
        logger=logging.getLogger("x0.worker"),
        on_startup=[*on_startup, *ensure_topics],
        on_shutdown=[responder.close for responder in responders],
        after_shutdown=list(after_shutdown),
    )
    _RESPONDERS[app] = tuple(r for r in responders if isinstance(r, Responder))
    return app


# The responders of each built app, for tests that check the contract's coverage.
_RESPONDERS: weakref.WeakKeyDictionary[AsgiFastStream, tuple[Responder, ...]] = (
    weakref.WeakKeyDictionary()
)


def responders_of(app: AsgiFastStream) -> tuple[Responder, ...]:
    """The request/reply responders a worker app was built with."""
    return _RESPONDERS[app]
