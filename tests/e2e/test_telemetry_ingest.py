"""The telemetry worker end to end: a real worker process, the real Kafka, PostgreSQL and
Redis. Events go in through ``x0.telemetry.events``; answers come back through a
Requester on ``x0.telemetry.requests``; dead letters are read from the DLQ topic.

Each test uses node and mesh ids of its own (the stack is shared with earlier runs).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import TELEMETRY_MAX_NODE_SERIES
from x0_common.contract import Telemetry
from x0_common.errors import InvalidInput, NotFound
from x0_common.events.envelope import Headers
from x0_common.events.telemetry import (
    EVENTS_TOPIC,
    REQUESTS_TOPIC,
    HistoryRequest,
    ListNodesRequest,
    NodeRequest,
    TopologyRequest,
)
from x0_common.kafka import Requester
from x0_common.kafka.clients import connection_options, process_settings
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.testing.kafka import commit_offsets
from x0_common.testing.principals import principal_header
from x0_common.testing.processes import service_process
from x0_common.testing.stack import StackEndpoints

pytestmark = pytest.mark.e2e

DLQ_TOPIC = f"{EVENTS_TOPIC}.dlq"


def _run_id() -> str:
    return uuid.uuid4().hex[:8]


def heartbeat(node: str, mesh: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "heartbeat",
        "node_id": node,
        "mesh_id": mesh,
        "timestamp": at.isoformat(),
        "status": "up",
        "software_version": "1.0.0",
        **fields,
    }


def metrics(node: str, mesh: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "metrics",
        "node_id": node,
        "mesh_id": mesh,
        "timestamp": at.isoformat(),
        "cpu": 0.5,
        "memory": 0.25,
        "rtt_ms": 12.0,
        "packet_loss": 0.01,
        "throughput_bps": 1e6,
        "neighbours": [],
        **fields,
    }


TYPE_OF = {"heartbeat": Telemetry.HEARTBEAT.message_type, "metrics": Telemetry.METRICS.message_type}


class Events:
    """Publishes telemetry records as an upstream producer would (acks=all)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(
        self,
        event: dict[str, Any] | None = None,
        *,
        value: bytes | None = None,
        key: str = "k",
        message_type: str | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> None:
        if event is not None:
            value = json.dumps(event).encode()
            key = event["node_id"]
            message_type = message_type or TYPE_OF[event["kind"]]
        all_headers = dict(headers or {})
        if message_type is not None:
            all_headers[Headers.TYPE] = message_type.encode()
        await self._producer.send_and_wait(
            EVENTS_TOPIC, value, key=key.encode(), headers=list(all_headers.items())
        )

    async def send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.send(event)


@pytest.fixture(scope="package")
async def events(stack: StackEndpoints) -> AsyncIterator[Events]:
    producer = AIOKafkaProducer(**stack.kafka_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        yield Events(producer)
    finally:
        await producer.stop()


@pytest.fixture(scope="package")
async def telemetry(stack: StackEndpoints, telemetry_worker: int) -> AsyncIterator[Requester]:
    requester = Requester(
        stack.kafka_settings(),
        # Under the gateway's reply prefix: the worker's identity may answer only there.
        reply_topic=f"x0.gateway.replies.test-telemetry-{_run_id()}",
        metrics=RequesterMetrics(new_registry(), "test"),
    )
    await requester.start()
    try:
        yield requester
    finally:
        await requester.stop()


@pytest.fixture
async def database(stack: StackEndpoints) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(stack.postgres_dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def ask(requester: Requester, message_type: str, payload: Any) -> dict[str, Any]:
    # Events published straight to Kafka carry no principal: they are the default
    # tenant's, so a caller of that tenant asks about them.
    return await requester.request(
        REQUESTS_TOPIC, message_type, payload, timeout=20, principal=principal_header()
    )


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Call ``probe`` until it returns something truthy (NotFound counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await probe()
        except NotFound:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.1)


async def metric(port: int, sample: str, **labels: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return sum(
        value.value
        for family in text_string_to_metric_families(response.text)
        for value in family.samples
        if value.name == sample and labels.items() <= value.labels.items()
    )


async def series_labels(port: int, sample: str) -> list[dict[str, str]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return [
        value.labels
        for family in text_string_to_metric_families(response.text)
        for value in family.samples
        if value.name == sample
    ]


async def rollup_samples(database: asyncpg.Connection, node: str) -> int:
    return int(
        await database.fetchval(
            "SELECT coalesce(sum(samples), 0) FROM telemetry.rollup_1m WHERE node_id = $1", node
        )
    )


# -- ingest ------------------------------------------------------------------------------


async def test_events_sent_twice_are_not_counted_twice(
    events: Events, telemetry_worker: int, database: asyncpg.Connection
) -> None:
    node, mesh = f"redeliver-{_run_id()}", f"mesh-{_run_id()}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    batch = [metrics(node, mesh, start + timedelta(seconds=5 * i), cpu=0.1 * i) for i in range(8)]
    duplicates_before = await metric(
        telemetry_worker, "x0_telemetry_events_total", type="metrics", outcome="duplicate"
    )

    await events.send_all(batch)
    await eventually(lambda: _equals(rollup_samples(database, node), 8), what="the first delivery")
    # The same events again (a producer retry, or the batch re-read after a crash).
    await events.send_all(batch)
    await eventually(
        lambda: _at_least(
            metric(
                telemetry_worker, "x0_telemetry_events_total", type="metrics", outcome="duplicate"
            ),
            duplicates_before + 8,
        ),
        what="the duplicates to be seen",
    )

    assert await rollup_samples(database, node) == 8
    rows = await database.fetchval("SELECT count(*) FROM telemetry.events WHERE node_id = $1", node)
    assert rows == 8
    cpu_sum = await database.fetchval(
        "SELECT sum(cpu_sum) FROM telemetry.rollup_1m WHERE node_id = $1", node
    )
    assert cpu_sum == pytest.approx(sum(0.1 * i for i in range(8)))


async def test_records_read_again_by_another_consumer_are_not_counted_twice(
    stack: StackEndpoints, events: Events, database: asyncpg.Connection, telemetry_worker: int
) -> None:
    """A second worker whose group starts before the batch re-reads the same Kafka records
    (as after a crash before the commit): nothing is added twice."""
    node, mesh = f"reread-{_run_id()}", f"mesh-{_run_id()}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    batch = [metrics(node, mesh, start + timedelta(seconds=5 * i), cpu=0.2) for i in range(8)]
    partitions = await _partitions(stack.kafka_bootstrap, EVENTS_TOPIC)
    before = await _end_offsets(stack.kafka_bootstrap, partitions)
    await events.send_all(batch)
    await eventually(lambda: _equals(rollup_samples(database, node), 8), what="the first read")
    after = await _end_offsets(stack.kafka_bootstrap, partitions)

    run = _run_id()
    group = f"x0-telemetry-ingest-e2e-reread-{run}"
    await commit_offsets(stack.kafka_bootstrap, group, before)
    environment = {
        **stack.environment(),
        "X0_TELEMETRY_INGEST_GROUP_ID": group,
        "X0_TELEMETRY_QUERY_GROUP_ID": f"x0-telemetry-queries-e2e-reread-{run}",
    }
    with service_process(
        "x0_telemetry", environment=environment, port_variable="X0_TELEMETRY_PORT"
    ) as port:
        await eventually(
            lambda: _committed_at_least(stack.kafka_bootstrap, group, after),
            what="the second worker to read the batch again",
        )
        duplicates = await metric(
            port, "x0_telemetry_events_total", type="metrics", outcome="duplicate"
        )
        stored = await metric(port, "x0_telemetry_events_total", type="metrics", outcome="stored")
    assert duplicates >= 8
    assert stored == 0
    assert await rollup_samples(database, node) == 8


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    consumer = AIOKafkaConsumer(**connection_options(process_settings(bootstrap)))
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic))]
    finally:
        await consumer.stop()


async def _end_offsets(bootstrap: str, partitions: list[TopicPartition]) -> dict[Any, int]:
    consumer = AIOKafkaConsumer(**connection_options(process_settings(bootstrap)))
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def _committed_at_least(bootstrap: str, group: str, target: dict[Any, int]) -> bool:
    admin = AIOKafkaAdminClient(**connection_options(process_settings(bootstrap)))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return all(p in committed and committed[p].offset >= offset for p, offset in target.items())


async def test_an_out_of_order_event_is_stored_but_does_not_regress_the_latest_state(
    events: Events, telemetry: Requester, database: asyncpg.Connection
) -> None:
    node, mesh = f"order-{_run_id()}", f"mesh-{_run_id()}"
    newer = datetime.now(UTC).replace(microsecond=0)
    older = newer - timedelta(seconds=20)
    await events.send(heartbeat(node, mesh, newer, status="degraded", software_version="2.0"))
    await events.send(metrics(node, mesh, newer, cpu=0.9))
    await events.send(heartbeat(node, mesh, older, status="up", software_version="1.0"))
    await events.send(metrics(node, mesh, older, cpu=0.1))

    async def both_stored() -> bool:
        count = await database.fetchval(
            "SELECT count(*) FROM telemetry.events WHERE node_id = $1", node
        )
        return bool(count == 4)

    await eventually(both_stored, what="all four events in PostgreSQL")
    state = await ask(telemetry, Telemetry.NODE_GET.message_type, NodeRequest(node_id=node))
    assert state["status"] == "degraded"
    assert state["reported_status"] == "degraded"
    assert state["software_version"] == "2.0"
    assert datetime.fromisoformat(state["last_heartbeat"]) == newer
    assert state["metrics"]["cpu"] == pytest.approx(0.9)
    assert datetime.fromisoformat(state["metrics"]["timestamp"]) == newer


async def test_bad_events_reach_the_dlq_with_their_reason_and_the_next_good_one_is_stored(
    stack: StackEndpoints, events: Events, telemetry: Requester, telemetry_worker: int
) -> None:
    run = _run_id()
    node, mesh = f"dlq-{run}", f"mesh-{run}"
    now = datetime.now(UTC)
    tag = {"x0-test-run": run.encode()}
    dlq = AIOKafkaConsumer(**stack.kafka_options(), enable_auto_commit=False)
    await dlq.start()
    try:
        cluster = await dlq._client.fetch_all_metadata()
        partitions = [TopicPartition(DLQ_TOPIC, p) for p in cluster.partitions_for_topic(DLQ_TOPIC)]
        dlq.assign(partitions)
        for partition, offset in (await dlq.end_offsets(partitions)).items():
            dlq.seek(partition, offset)
        dead_before = await metric(
            telemetry_worker, "x0_responder_dead_lettered_total", topic=EVENTS_TOPIC
        )

        future = heartbeat(node, mesh, now + timedelta(hours=1))
        await events.send(future, headers=tag)
        await events.send(
            value=b"{not json", key=node, message_type=Telemetry.HEARTBEAT.message_type, headers=tag
        )
        naive = heartbeat(node, mesh, now)
        naive["timestamp"] = now.replace(tzinfo=None).isoformat()
        await events.send(naive, headers=tag)
        await events.send(
            heartbeat(node, mesh, now), message_type="telemetry.node.bogus.v1", headers=tag
        )
        await events.send(heartbeat(node, mesh, now - timedelta(days=8)), headers=tag)
        await events.send(value=b"{}", key=node, headers=tag)  # no x0-type at all
        await events.send(heartbeat(node, mesh, now), headers={**tag, "x0-bad": b"\xff\xfe"})
        await events.send(heartbeat(node, mesh, now, status="draining"))

        state = await eventually(
            lambda: ask(telemetry, Telemetry.NODE_GET.message_type, NodeRequest(node_id=node)),
            what="the good event",
        )
        assert state["reported_status"] == "draining"

        reasons: list[str] = []
        deadline = time.monotonic() + 20
        while len(reasons) < 7 and time.monotonic() < deadline:
            batch = await dlq.getmany(timeout_ms=500)
            for record in (r for rs in batch.values() for r in rs):
                headers = dict(record.headers)
                if headers.get("x0-test-run") != run.encode():
                    continue
                reasons.append(headers[Headers.DLQ_REASON].decode())
                assert headers[Headers.DLQ_ORIGIN].decode().startswith(f"{EVENTS_TOPIC}/")
                assert headers[Headers.DLQ_DETAIL]
                # The original bytes and key travel with the reason.
                assert record.key == node.encode()
    finally:
        await dlq.stop()

    assert sorted(reasons) == sorted(
        [
            "future_timestamp",
            "undecodable",
            "schema_mismatch",
            "unknown_type",
            "beyond_retention",
            "unknown_type",
            "undecodable",
        ]
    )
    dead_after = await metric(
        telemetry_worker, "x0_responder_dead_lettered_total", topic=EVENTS_TOPIC
    )
    assert dead_after - dead_before == 7
    assert await metric(telemetry_worker, "x0_telemetry_events_total", outcome="dead_lettered") >= 7


# -- queries -----------------------------------------------------------------------------


async def test_history_from_rollups_agrees_with_raw_events(
    events: Events, telemetry: Requester
) -> None:
    node, mesh = f"history-{_run_id()}", f"mesh-{_run_id()}"
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    batch = [
        metrics(node, mesh, start + timedelta(seconds=10 * i), cpu=(i % 7) / 10, rtt_ms=float(i))
        for i in range(36)  # six minutes at 10 s
    ]
    await events.send_all(batch)
    window = {"node_id": node, "start": start, "end": start + timedelta(minutes=6)}

    async def complete(step: int) -> dict[str, Any] | None:
        history = await ask(
            telemetry,
            Telemetry.NODE_HISTORY.message_type,
            HistoryRequest(**window, step_seconds=step),
        )
        return history if sum(p["samples"] for p in history["points"]) == 36 else None

    rollup = await eventually(lambda: complete(60), what="six minutes of rollups")
    raw = await complete(10)
    assert raw is not None
    assert rollup["source"] == "rollup"
    assert raw["source"] == "raw"
    assert len(rollup["points"]) == 6
    assert len(raw["points"]) == 36

    # Each minute's rollup mean is the sample-weighted mean of its raw 10 s points.
    for point in rollup["points"]:
        minute = datetime.fromisoformat(point["timestamp"])
        inside = [
            p
            for p in raw["points"]
            if minute <= datetime.fromisoformat(p["timestamp"]) < minute + timedelta(minutes=1)
        ]
        assert sum(p["samples"] for p in inside) == point["samples"] == 6
        for field in ("cpu", "memory", "rtt_ms", "packet_loss", "throughput_bps"):
            mean = sum(p[field] * p["samples"] for p in inside) / point["samples"]
            assert point[field] == pytest.approx(mean)


async def test_history_refuses_an_empty_or_too_long_range(telemetry: Requester) -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput):
        await ask(
            telemetry,
            Telemetry.NODE_HISTORY.message_type,
            HistoryRequest(node_id="n", start=now, end=now, step_seconds=60),
        )
    with pytest.raises(InvalidInput):
        await ask(
            telemetry,
            Telemetry.NODE_HISTORY.message_type,
            HistoryRequest(node_id="n", start=now - timedelta(days=7), end=now, step_seconds=10),
        )


async def test_node_list_get_and_topology(
    events: Events, telemetry: Requester, telemetry_worker: int
) -> None:
    run = _run_id()
    mesh = f"mesh-{run}"
    a, b, c = f"a-{run}", f"b-{run}", f"c-{run}"
    now = datetime.now(UTC)
    await events.send(heartbeat(a, mesh, now))
    await events.send(heartbeat(b, mesh, now, status="degraded"))
    # c's last heartbeat is older than the 30 s down timeout.
    await events.send(heartbeat(c, mesh, now - timedelta(seconds=90)))
    await events.send(
        metrics(a, mesh, now, neighbours=[{"node_id": b, "link_quality": 0.75, "rtt_ms": 4.0}])
    )
    await events.send(metrics(b, mesh, now, neighbours=[{"node_id": a, "link_quality": 0.25}]))

    async def listed() -> dict[str, Any] | None:
        nodes = await ask(
            telemetry, Telemetry.NODES_LIST.message_type, ListNodesRequest(mesh_id=mesh)
        )
        complete = len(nodes["nodes"]) == 3 and all(
            n["metrics"] for n in nodes["nodes"] if n["node_id"] != c
        )
        return nodes if complete else None

    nodes = await eventually(listed, what="three nodes listed")
    assert [n["node_id"] for n in nodes["nodes"]] == [a, b, c]
    assert [n["status"] for n in nodes["nodes"]] == ["up", "degraded", "down"]

    down = await ask(
        telemetry, Telemetry.NODES_LIST.message_type, ListNodesRequest(mesh_id=mesh, status="down")
    )
    assert [n["node_id"] for n in down["nodes"]] == [c]
    limited = await ask(
        telemetry, Telemetry.NODES_LIST.message_type, ListNodesRequest(mesh_id=mesh, limit=1)
    )
    assert [n["node_id"] for n in limited["nodes"]] == [a]

    with pytest.raises(NotFound):
        await ask(telemetry, Telemetry.NODE_GET.message_type, NodeRequest(node_id=f"nobody-{run}"))

    topology = await ask(
        telemetry, Telemetry.TOPOLOGY_GET.message_type, TopologyRequest(mesh_id=mesh)
    )
    assert topology["mesh_id"] == mesh
    assert [n["node_id"] for n in topology["nodes"]] == [a, b, c]
    assert topology["links"] == [
        {"source": a, "target": b, "link_quality": 0.75, "rtt_ms": 4.0},
        {"source": b, "target": a, "link_quality": 0.25, "rtt_ms": None},
    ]

    async def gauge_counts() -> bool:
        values = [
            await metric(telemetry_worker, "x0_telemetry_nodes", mesh_id=mesh, status=status)
            for status in ("up", "degraded", "draining", "down")
        ]
        return values == [1, 1, 0, 1]

    await eventually(gauge_counts, what="x0_telemetry_nodes for the mesh")


async def test_node_series_stay_within_the_cap(events: Events, telemetry_worker: int) -> None:
    run = _run_id()
    mesh = f"flood-{run}"
    now = datetime.now(UTC)
    dropped_before = await metric(telemetry_worker, "x0_telemetry_node_series_dropped_total")
    flood = TELEMETRY_MAX_NODE_SERIES + 15
    for i in range(flood):
        await events.send(heartbeat(f"fake-{run}-{i:03d}", mesh, now))

    async def all_counted() -> bool:
        # The per-mesh count is not capped: it counts every node.
        return await metric(telemetry_worker, "x0_telemetry_nodes", mesh_id=mesh) == flood

    async def refused() -> bool:
        dropped = await metric(telemetry_worker, "x0_telemetry_node_series_dropped_total")
        # At most the cap's worth of the new nodes can have found a free place.
        return dropped >= dropped_before + flood - TELEMETRY_MAX_NODE_SERIES

    await eventually(all_counted, what="every flooding node counted")
    await eventually(refused, what="the cap to refuse series")
    for sample in ("x0_telemetry_node_heartbeat_age_seconds", "x0_telemetry_node_link_quality"):
        nodes = {labels["node_id"] for labels in await series_labels(telemetry_worker, sample)}
        assert len(nodes) <= TELEMETRY_MAX_NODE_SERIES
    ages = await series_labels(telemetry_worker, "x0_telemetry_node_heartbeat_age_seconds")
    assert ages, "the capped set still has series"


async def test_readiness_includes_the_ingest_consumer(telemetry_worker: int) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{telemetry_worker}/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["consumer_assigned"] is True


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _at_least(value: Awaitable[float], expected: float) -> bool:
    return await value >= expected
