"""A worker process: the FastStream app plus ``/metrics`` and ``/health/*`` over HTTP.

Every worker service builds its app here, so start-up, shutdown and the operational
endpoints look the same everywhere:

- start-up opens the worker's :class:`~x0_common.resources.Stores` (PostgreSQL pool,
  its migrations, Redis), runs the worker's own hooks, starts its
  :class:`Periodic` jobs, creates each consumer's topics and starts the broker;
- shutdown lets each consumer finish or hand back its work before the broker stops,
  then stops the jobs, runs the worker's hooks and closes the stores;
- ``/health/live`` (the loop answers), ``/health/ready`` (each consumer holds
  partitions and every dependency check passes, ``postgres`` and ``redis`` included)
  and ``/metrics`` (the service's own registry).

:func:`run_worker` is every worker's ``python -m x0_<service>``: JSON logs, tracing
from the ``OTEL_*`` environment, and uvicorn on the settings' host and port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import uvicorn
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, make_asgi_app

from x0_common.contract.operation import Operation
from x0_common.kafka.broker import new_broker
from x0_common.kafka.responder import Responder
from x0_common.logs import setup_logging
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.resources import Stores
from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.tasks import cancel_and_wait
from x0_common.tracing import setup_tracing

if TYPE_CHECKING:
    # Types only: the ASGI protocol as Starlette spells it.
    from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Hook = Callable[[], Awaitable[None]]


class Consumer(Protocol):
    """What the app needs of a consumer: a :class:`~x0_common.kafka.Responder`, or
    another :class:`~x0_common.kafka.consumer.Consumer` (the telemetry ingest's batch
    consumer)."""

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


@dataclass(frozen=True, eq=False)
class Wiring:
    """What every worker is wired from: its own metrics registry, a broker with x0's
    producer options and tracing, and the responder metrics its consumers share."""

    service: str
    kafka: KafkaSettings
    registry: CollectorRegistry
    broker: KafkaBroker
    responder_metrics: ResponderMetrics

    @classmethod
    def of(
        cls, service: str, common: CommonSettings, tracer_provider: TracerProvider | None = None
    ) -> Wiring:
        """A fresh registry and broker for ``service`` on the ``common`` Kafka settings."""
        registry = new_registry()
        broker = new_broker(common.kafka, tracer_provider=tracer_provider)
        return cls(service, common.kafka, registry, broker, ResponderMetrics(registry, service))

    def responder(self, topic: str, *, group_id: str, partitions: int) -> Responder:
        """The request/reply responder of ``topic`` in consumer group ``group_id``."""
        return Responder(
            self.broker,
            topic=topic,
            group_id=group_id,
            settings=self.kafka,
            metrics=self.responder_metrics,
            partitions=partitions,
        )


@dataclass(eq=False)
class Periodic:
    """A background job of the worker: ``step`` every ``interval`` seconds.

    With ``first=True`` one step runs at start-up, before the broker starts, and its
    failure stops the start (the database refuses, say); later steps' failures are
    logged and the next one tries again. ``jitter`` spreads replicas apart (0.1: each
    wait is the interval ±10 %).
    """

    name: str
    step: Callable[[], Awaitable[object]]
    interval: float
    _: KW_ONLY
    first: bool = False
    jitter: float = 0.0
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def start(self) -> None:
        """Run the first step if asked, then the loop in the background."""
        if self.first:
            await self.step()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"x0-{self.name}")

    async def stop(self) -> None:
        """Stop the loop; a step in flight is cancelled."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            spread = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - not a secret
            await asyncio.sleep(self.interval * spread)
            try:
                await self.step()
            except Exception as error:  # noqa: BLE001 - the job must outlive any one failure
                logger.warning(
                    "background job failed", extra={"job": self.name, "error": type(error).__name__}
                )


def build_worker_app(
    wiring: Wiring,
    *,
    responders: Sequence[Consumer],
    checks: Mapping[str, Check] | None = None,
    operations: Iterable[Operation] = (),
    stores: Stores | None = None,
    on_startup: Sequence[Hook] = (),
    background: Sequence[Periodic] = (),
    after_shutdown: Sequence[Hook] = (),
) -> AsgiFastStream:
    """The worker's ASGI app on ``wiring``'s broker and metrics registry; run it with uvicorn.

    Start-up opens ``stores``, runs ``on_startup`` (build what needs them), starts the
    ``background`` jobs, creates each consumer's topics, then starts the broker.
    Shutdown lets each consumer finish (commit its offsets) before the broker stops,
    then stops the jobs, runs ``after_shutdown`` and closes ``stores``. Readiness adds
    the stores' ``postgres`` and ``redis`` checks to ``checks``. Every operation of
    ``operations`` on a responder's topic must have its handler.
    """
    # The self-check: a row of the contract whose handler is missing stops the start.
    required = tuple(operations)
    for responder in responders:
        if isinstance(responder, Responder):
            responder.require(required)
    ensure_topics = [responder.ensure_topics for responder in responders]
    opening: list[Hook] = [stores.open] if stores is not None else []
    closing: list[Hook] = [stores.close] if stores is not None else []
    all_checks = {**(stores.checks() if stores is not None else {}), **(checks or {})}
    app = AsgiFastStream(
        wiring.broker,
        asgi_routes=[
            ("/metrics", make_asgi_app(wiring.registry)),
            ("/health/live", _Live()),
            ("/health/ready", _Ready(responders, all_checks)),
        ],
        logger=logging.getLogger("x0.worker"),
        on_startup=[*opening, *on_startup, *(job.start for job in background), *ensure_topics],
        on_shutdown=[responder.close for responder in responders],
        after_shutdown=[*(job.stop for job in background), *after_shutdown, *closing],
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


class WorkerSettings(Protocol):
    """What :func:`run_worker` reads of a worker's settings."""

    common: CommonSettings
    host: str
    port: int


S = TypeVar("S", bound=WorkerSettings)


def run_worker(
    service: str, settings: S, create_app: Callable[[S, TracerProvider], AsgiFastStream]
) -> None:
    """Run one worker process until it is stopped: JSON logs at the settings' level,
    tracing as ``x0-<service>``, the app from ``create_app`` served by uvicorn (its own
    access log and logging set-up off: the JSON lines are the log)."""
    setup_logging(service, settings.common.log_level)
    provider = setup_tracing(f"x0-{service}")
    app = create_app(settings, provider)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
