"""``POST /v1/telemetry/events`` on the real broker: what lands in ``x0.telemetry.events``."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from x0_common.contract import OPERATION_OF_KIND
from x0_common.events import telemetry as t
from x0_common.kafka.clients import connection_options
from x0_common.settings import CommonSettings, KafkaSettings
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings
from x0_telemetry.domain.events import EVENT_TYPES

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(
    kafka_settings: KafkaSettings, admin_api_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in process, its requester on the real broker (no worker needed); the
    client sends an admin API key."""
    settings = GatewaySettings(
        common=CommonSettings(kafka=kafka_settings),
        replica_id=f"telemetry-publish-{uuid.uuid4().hex[:6]}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {admin_api_key}"},
        ) as client:
            yield client


async def records_since(
    kafka_settings: KafkaSettings, since_ms: int, node_ids: set[str]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``node_ids`` written to the events topic since ``since_ms``.

    Read by timestamp, without a group: the topic is shared with other tests and the
    worker, and nothing here may create it with settings of its own.
    """
    admin = AIOKafkaAdminClient(**connection_options(kafka_settings))
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([t.EVENTS_TOPIC])
    finally:
        await admin.close()
    partitions = [TopicPartition(t.EVENTS_TOPIC, p["partition"]) for p in topic["partitions"]]
    assert partitions, f"{t.EVENTS_TOPIC} does not exist"
    consumer = AIOKafkaConsumer(**connection_options(kafka_settings))
    await consumer.start()
    try:
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        ends = await consumer.end_offsets(partitions)
        found: list[ConsumerRecord[bytes, bytes]] = []
        for partition in partitions:
            start = starts[partition]
            if start is None:
                continue
            consumer.seek(partition, start.offset)
            while await consumer.position(partition) < ends[partition]:
                batch = await consumer.getmany(partition, timeout_ms=2000)
                found.extend(
                    record
                    for record in batch.get(partition, [])
                    if record.key is not None and record.key.decode() in node_ids
                )
        return found
    finally:
        await consumer.stop()


async def test_every_event_is_in_kafka_keyed_by_node_with_its_type_before_the_202(
    gateway: httpx.AsyncClient, kafka_settings: KafkaSettings
) -> None:
    run = uuid.uuid4().hex[:8]
    nodes = [f"gw-{run}-a", f"gw-{run}-b"]
    now = datetime.now(UTC).replace(microsecond=0)
    events: list[dict[str, Any]] = []
    for second in range(3):
        for node in nodes:
            stamp = (now - timedelta(seconds=second)).isoformat()
            events.append(
                {
                    "kind": "heartbeat",
                    "node_id": node,
                    "mesh_id": f"mesh-{run}",
                    "timestamp": stamp,
                    "software_version": "2.0.1",
                }
            )
            events.append(
                {
                    "kind": "metrics",
                    "node_id": node,
                    "mesh_id": f"mesh-{run}",
                    "timestamp": stamp,
                    "cpu": 0.3,
                    "memory": 0.6,
                    "rtt_ms": 4.0,
                    "packet_loss": 0.0,
                    "throughput_bps": 2.5e6,
                    "neighbours": [{"node_id": nodes[1 - nodes.index(node)], "link_quality": 0.8}],
                }
            )
    since_ms = int(time.time() * 1000) - 1000

    response = await gateway.post("/v1/telemetry/events", json={"events": events})

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(events)}
    # Durable before the answer: a reader right after the 202 finds every one.
    records = await records_since(kafka_settings, since_ms, set(nodes))
    assert len(records) == len(events)
    published = []
    for record in records:
        headers = {name: value.decode() for name, value in record.headers}
        payload = EVENT_TYPES[headers["x0-type"]].model_validate_json(record.value or b"")
        assert record.key == payload.node_id.encode()
        assert headers["x0-type"] == OPERATION_OF_KIND[payload.kind].message_type
        published.append(payload.model_dump(mode="json"))
    expected = [
        EVENT_TYPES[OPERATION_OF_KIND[e["kind"]].message_type]
        .model_validate(e)
        .model_dump(mode="json")
        for e in events
    ]
    assert sorted(published, key=repr) == sorted(expected, key=repr)


async def test_a_refused_batch_publishes_nothing(
    gateway: httpx.AsyncClient, kafka_settings: KafkaSettings
) -> None:
    node = f"gw-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    good = {
        "kind": "heartbeat",
        "node_id": node,
        "mesh_id": "m",
        "timestamp": now.isoformat(),
        "software_version": "1",
    }
    future = {**good, "timestamp": (now + timedelta(hours=1)).isoformat()}
    since_ms = int(time.time() * 1000) - 1000
    response = await gateway.post("/v1/telemetry/events", json={"events": [good, future]})
    assert response.status_code == 400
    assert response.json()["details"]["index"] == 1
    # A later event of the same node (same key, same partition) shows that the reader
    # does find what the gateway published: only the refused batch is missing.
    marker = {**good, "timestamp": (now - timedelta(seconds=1)).isoformat()}
    assert (
        await gateway.post("/v1/telemetry/events", json={"events": [marker]})
    ).status_code == 202
    records = await records_since(kafka_settings, since_ms, {node})
    assert [t.NodeHeartbeat.model_validate_json(r.value or b"").timestamp for r in records] == [
        datetime.fromisoformat(marker["timestamp"])
    ]
