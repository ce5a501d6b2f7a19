"""The ingest consumer in process, on the real broker, PostgreSQL and Redis.

The subject is the batch loop itself: a batch whose write fails is read again (never
skipped), and the offsets committed cover only what is durable.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind

from x0_common.contract import Telemetry
from x0_common.errors import Unavailable
from x0_common.kafka.broker import new_broker
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.principal import DEFAULT_TENANT
from x0_common.testing import SpanCapture, wait_until
from x0_common.testing.stack import StackEndpoints
from x0_telemetry.adapters.history import HistoryStore
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.handlers.ingest import Ingest

from .support import started_deps

pytestmark = pytest.mark.integration


class FailingFirst(HistoryStore):
    """The real store, except that its first ``failures`` writes fail as a lost database."""

    def __init__(self, pool: asyncpg.Pool, failures: int) -> None:
        super().__init__(pool)
        self.failures = failures
        self.calls = 0

    async def write(self, rows: Sequence[tuple[object, ...]]) -> dict[str, int]:
        self.calls += 1
        if self.calls <= self.failures:
            raise Unavailable("injected failure", details={"reason": "postgres"})
        return await super().write(rows)


@pytest.fixture
async def deps(stack: StackEndpoints) -> AsyncIterator[TelemetryDeps]:
    async with started_deps(stack, partitions=2) as started:
        started.history = FailingFirst(started.stores.pool, failures=2)
        yield started


async def test_a_failed_batch_is_read_again_and_then_committed(
    stack: StackEndpoints, deps: TelemetryDeps
) -> None:
    topic = f"x0.test.telemetry.{uuid.uuid4().hex[:12]}"
    kafka = deps.settings.common.kafka
    broker = new_broker(kafka)
    ingest = Ingest(broker, deps, ResponderMetrics(new_registry(), "telemetry"), topic=topic)
    await ingest.ensure_topics()
    node = f"retry-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
    await producer.start()
    await broker.start()
    try:
        await ingest.wait_assigned()
        for i in range(20):
            body = {
                "kind": "metrics",
                "node_id": node,
                "mesh_id": "mesh-retry",
                "timestamp": (at + timedelta(seconds=i)).isoformat(),
                "cpu": 0.5,
                "memory": 0.5,
                "rtt_ms": 1.0,
                "packet_loss": 0.0,
                "throughput_bps": 1.0,
            }
            await producer.send_and_wait(
                topic,
                json.dumps(body).encode(),
                key=node.encode(),
                headers=[("x0-type", Telemetry.METRICS.message_type.encode())],
            )

        async def stored() -> int:
            return int(
                await deps.stores.pool.fetchval(
                    "SELECT count(*) FROM telemetry.events WHERE node_id = $1", node
                )
            )

        for _ in range(300):
            if await stored() == 20:
                break
            await asyncio.sleep(0.1)
        assert await stored() == 20
        assert isinstance(deps.history, FailingFirst)
        assert deps.history.calls >= 3  # two failures, then the batch again
        assert (await deps.latest.of(DEFAULT_TENANT).node(node))["m_ms"]

        # Every event is committed once written: the group's offsets reach the end.
        admin = AIOKafkaAdminClient(**stack.kafka_options())
        await admin.start()
        try:
            async with asyncio.timeout(10):
                while True:
                    committed = await admin.list_consumer_group_offsets(
                        deps.settings.ingest_group_id
                    )
                    if sum(o.offset for o in committed.values()) == 20:
                        break
                    await asyncio.sleep(0.1)
        finally:
            await admin.close()
    finally:
        await ingest.close()
        await broker.stop()
        await producer.stop()


async def test_the_batch_span_links_each_event_and_holds_the_writes(
    stack: StackEndpoints, deps: TelemetryDeps, span_capture: SpanCapture
) -> None:
    """One consumer span per batch, linked to the producer span of every event in it (with
    or without a correlation id), with the PostgreSQL and Redis client spans under it."""
    deps.history = HistoryStore(deps.stores.pool)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    topic = f"x0.test.telemetry.{uuid.uuid4().hex[:12]}"
    broker = new_broker(deps.settings.common.kafka, tracer_provider=provider)
    ingest = Ingest(broker, deps, ResponderMetrics(new_registry(), "telemetry"), topic=topic)
    await ingest.ensure_topics()
    node = f"traced-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC).replace(microsecond=0)
    producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
    await producer.start()
    await broker.start()
    tracer = provider.get_tracer("test")
    span_capture.clear()
    try:
        await ingest.wait_assigned()
        with tracer.start_as_current_span("upstream publish", kind=SpanKind.PRODUCER) as sent:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            body = {
                "kind": "heartbeat",
                "node_id": node,
                "mesh_id": "mesh-traced",
                "timestamp": at.isoformat(),
                "software_version": "1",
            }
            await producer.send_and_wait(
                topic,
                json.dumps(body).encode(),
                key=node.encode(),
                headers=[
                    ("x0-type", Telemetry.HEARTBEAT.message_type.encode()),
                    *((k, v.encode()) for k, v in carrier.items()),
                ],
            )
        sent_context = sent.get_span_context()

        def consumer_span() -> ReadableSpan | None:
            for span in span_capture.spans:
                if span.kind is SpanKind.CONSUMER and any(
                    link.context.span_id == sent_context.span_id for link in span.links
                ):
                    return span
            return None

        await wait_until(lambda: consumer_span() is not None, timeout=20)
        batch = consumer_span()
        assert batch is not None
        await wait_until(
            lambda: (
                {"postgresql", "redis"}
                <= {
                    str(s.attributes.get("db.system"))
                    for s in span_capture.spans
                    if s.context.trace_id == batch.context.trace_id and s.attributes
                }
            ),
            timeout=10,
        )
    finally:
        await ingest.close()
        await broker.stop()
        await producer.stop()
