"""Tenancy in the telemetry worker: a node belongs to one tenant.

Events carry the tenant of their principal (the gateway's); events upstream producers
publish without one belong to ``X0_TELEMETRY_DEFAULT_TENANT``. A malformed principal,
or one without ``telemetry:write``, is dead-lettered; so are the events of a node past
its tenant's node quota. The same node id in two tenants is two nodes (rows, latest
state, queries); rows from before tenants existed belong to ``default``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from x0_common.contract import Telemetry
from x0_common.errors import NotFound
from x0_common.events.envelope import Headers
from x0_common.events.telemetry import HistoryRequest, NodeRequest
from x0_common.kafka.broker import new_broker
from x0_common.kafka.clients import connection_options, process_settings
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.postgres import migrate
from x0_common.principal import DEFAULT_TENANT
from x0_common.testing.handlers import CapturingResponder
from x0_common.testing.migrations import scratch_pool
from x0_common.testing.principals import principal, principal_header, request_context
from x0_common.testing.stack import StackEndpoints
from x0_telemetry.adapters.history import HistoryStore
from x0_telemetry.adapters.partitions import Partitions
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.domain.history import plan_history
from x0_telemetry.handlers import queries
from x0_telemetry.handlers.ingest import Ingest

from .support import MIGRATIONS, started_deps

pytestmark = pytest.mark.integration

MAX_NODES = 2


@pytest.fixture
async def deps(stack: StackEndpoints) -> AsyncIterator[TelemetryDeps]:
    async with started_deps(stack, partitions=1, max_nodes_per_tenant=MAX_NODES) as started:
        yield started


def _metrics(node: str, at: datetime, cpu: float) -> bytes:
    body: dict[str, Any] = {
        "kind": "metrics",
        "node_id": node,
        "mesh_id": "mesh",
        "timestamp": at.isoformat(),
        "cpu": cpu,
        "memory": 0.5,
        "rtt_ms": 1.0,
        "packet_loss": 0.0,
        "throughput_bps": 1.0,
    }
    return json.dumps(body).encode()


async def _dead_letters(bootstrap: str, topic: str, count: int) -> list[dict[str, str]]:
    """The headers of the first ``count`` dead letters of ``topic``."""
    consumer = AIOKafkaConsumer(
        **connection_options(process_settings(bootstrap)), enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(f"{topic}.dlq", 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        found: list[dict[str, str]] = []
        async with asyncio.timeout(30):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found.extend({k: v.decode() for k, v in record.headers} for record in records)
        return found
    finally:
        await consumer.stop()


async def _until(probe: Callable[[], Any], tries: int = 300) -> None:
    for _ in range(tries):
        if await probe():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("gave up waiting")


async def test_events_are_stored_under_their_senders_tenant(
    stack: StackEndpoints, deps: TelemetryDeps
) -> None:
    run = uuid.uuid4().hex[:8]
    a, b = f"ta-{run}", f"tb-{run}"
    topic = f"x0.test.telemetry.{run}"
    broker = new_broker(deps.settings.common.kafka)
    ingest = Ingest(broker, deps, ResponderMetrics(new_registry(), "telemetry"), topic=topic)
    await ingest.ensure_topics()
    producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
    await producer.start()
    await broker.start()
    node = f"node-{run}"
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    kind = [(Headers.TYPE, Telemetry.METRICS.message_type.encode())]

    async def send(value: bytes, header: str | None) -> None:
        extra = [] if header is None else [(Headers.PRINCIPAL, header.encode())]
        await producer.send_and_wait(topic, value, key=node.encode(), headers=kind + extra)

    try:
        await ingest.wait_assigned()
        await send(_metrics(node, at, 0.25), principal_header(a))
        await send(_metrics(node, at, 0.75), principal_header(b))
        await send(_metrics(node, at, 0.5), None)  # an upstream producer: the default tenant
        # Refused: a malformed principal, one without telemetry:write, a third node of a.
        await send(_metrics(node, at + timedelta(seconds=1), 0.1), "not json")
        await send(
            _metrics(node, at + timedelta(seconds=2), 0.1),
            principal_header(a, scopes=["telemetry:read"]),
        )
        for extra in ("x", "y"):
            await producer.send_and_wait(
                topic,
                _metrics(f"{node}-{extra}", at, 0.9),
                key=node.encode(),
                headers=[*kind, (Headers.PRINCIPAL, principal_header(a).encode())],
            )

        async def stored() -> list[tuple[str, str, float]]:
            rows = await deps.stores.pool.fetch(
                "SELECT tenant, node_id, cpu FROM telemetry.events WHERE node_id LIKE $1"
                " ORDER BY tenant, node_id",
                f"{node}%",
            )
            return [(r["tenant"], r["node_id"], r["cpu"]) for r in rows]

        async def all_stored() -> bool:
            return len(await stored()) == 4

        await _until(all_stored)
        assert sorted(await stored()) == sorted(
            [(a, node, 0.25), (a, f"{node}-x", 0.9), (b, node, 0.75), (DEFAULT_TENANT, node, 0.5)]
        )
        letters = await _dead_letters(stack.kafka_bootstrap, topic, 3)
        assert sorted(h[Headers.DLQ_REASON] for h in letters) == [
            "forbidden",
            "quota_exceeded",
            "unauthenticated",
        ]
        quota = next(h for h in letters if h[Headers.DLQ_REASON] == "quota_exceeded")
        assert f"quota of {MAX_NODES} nodes" in quota[Headers.DLQ_DETAIL]

        # Each tenant sees its own node; another tenant's is not found.
        responder = CapturingResponder()
        queries.register(responder, deps)  # type: ignore[arg-type]
        _, on_get = responder.handlers[Telemetry.NODE_GET.message_type]
        _, on_history = responder.handlers[Telemetry.NODE_HISTORY.message_type]
        for tenant, cpu in ((a, 0.25), (b, 0.75), (DEFAULT_TENANT, 0.5)):
            state = await on_get(NodeRequest(node_id=node), request_context(principal(tenant)))
            assert state is not None
            assert state.metrics is not None
            assert state.metrics.cpu == cpu
            window = HistoryRequest(
                node_id=node, start=at - timedelta(minutes=1), end=at + timedelta(minutes=1)
            )
            history = await on_history(window, request_context(principal(tenant)))
            assert [point.cpu for point in history.points] == [cpu]
        with pytest.raises(NotFound):
            await on_get(NodeRequest(node_id=node), request_context(principal(f"tc-{run}")))
    finally:
        await ingest.close()
        await broker.stop()
        await producer.stop()


async def test_the_node_quota_admits_known_nodes_and_frees_silent_ones(
    deps: TelemetryDeps,
) -> None:
    latest = deps.latest.of(f"tq-{uuid.uuid4().hex[:8]}")
    now = 1_000_000_000
    assert await latest.admit(["n1", "n2", "n3"], now, 2) == {"n3"}
    # Known nodes stay admitted; the full quota refuses newcomers.
    assert await latest.admit(["n2", "n1", "n4"], now + 1_000, 2) == {"n4"}
    # A node silent for the TTL (300 s here) leaves the quota.
    assert await latest.admit(["n2"], now + 200_000, 2) == set()
    assert await latest.admit(["n5"], now + 301_500, 2) == set()


async def test_rows_written_before_tenants_belong_to_default(stack: StackEndpoints) -> None:
    async with scratch_pool(
        stack.postgres_dsn, "telemetry", MIGRATIONS, "001_telemetry.sql"
    ) as pool:
        at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
        await Partitions(pool, retention_days=7, ahead_days=1).ensure({at.date()})
        await pool.execute(
            "INSERT INTO telemetry.events (node_id, ts, type, mesh_id, cpu, memory, rtt_ms,"
            " packet_loss, throughput_bps) VALUES ('old', $1, 'metrics', 'm', 0.5, 0.5, 1,"
            " 0, 1)",
            at,
        )
        await pool.execute(
            "INSERT INTO telemetry.rollup_1m (node_id, minute, samples, cpu_sum, memory_sum,"
            " rtt_ms_sum, packet_loss_sum, throughput_bps_sum)"
            " VALUES ('old', $1, 1, 0.5, 0.5, 1, 0, 1)",
            at,
        )
        assert await migrate(pool, "telemetry", MIGRATIONS) == ["002_tenants.sql"]
        for table in ("events", "rollup_1m"):
            tenants = await pool.fetch(f"SELECT DISTINCT tenant FROM telemetry.{table}")  # noqa: S608
            assert [row["tenant"] for row in tenants] == [DEFAULT_TENANT], table
        store = HistoryStore(pool)
        window = HistoryRequest(
            node_id="old", start=at - timedelta(minutes=5), end=at + timedelta(minutes=5)
        )
        points = await store.history(plan_history(window))
        assert [point.cpu for point in points] == [0.5]
        assert await store.history(plan_history(window), tenant="elsewhere") == []
