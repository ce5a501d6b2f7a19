"""Request topics keep records only as long as a request can matter.

A request's caller has its answer, or its 504, within the gateway's deadline; after
that the record (a sealed payload) is only a liability on the broker's disks. So every
request/reply topic, and its dead-letter topic, has ``request_topic_retention_ms``
(15 minutes by default) instead of the broker's 7 days, whether ops tooling created it
(``deploy/local-stack/kafka_access.py``, the Strimzi KafkaTopics) or a worker did where
no ops tooling runs. Data topics (RAG ingest, telemetry events) keep the broker's.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from x0_common.contract import OPERATIONS
from x0_common.events import rag, telemetry
from x0_common.kafka.broker import new_broker
from x0_common.kafka.clients import connection_options
from x0_common.kafka.dead_letters import dlq_topic
from x0_common.settings import KafkaSettings
from x0_common.testing.kafka import responder_under_test

pytestmark = pytest.mark.integration

WEEK_MS = 7 * 24 * 3600 * 1000


async def retention_of(settings: KafkaSettings, topics: list[str]) -> dict[str, int]:
    """Each topic's effective ``retention.ms`` on the broker."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
        )
    finally:
        await admin.close()
    found = {}
    for response in described:
        for error, message, _kind, name, entries in response.resources:
            assert error == 0, f"{name}: {message}"
            found[name] = int({entry[0]: entry[1] for entry in entries}["retention.ms"])
    return found


def request_topics() -> list[str]:
    return sorted({o.topic for o in OPERATIONS if o.delivery == "request"})


def test_the_request_topics_are_the_three_request_reply_topics() -> None:
    assert request_topics() == ["x0.crypto.requests", "x0.rag.requests", "x0.telemetry.requests"]


async def test_the_stack_creates_request_topics_with_the_short_retention(
    kafka_settings: KafkaSettings,
) -> None:
    wanted = kafka_settings.request_topic_retention_ms
    assert wanted < WEEK_MS
    short = [t for topic in request_topics() for t in (topic, dlq_topic(topic))]
    data = [rag.INGEST_TOPIC, telemetry.EVENTS_TOPIC]

    retention = await retention_of(kafka_settings, short + data)

    assert {topic: retention[topic] for topic in short} == dict.fromkeys(short, wanted)
    assert {topic: retention[topic] for topic in data} == dict.fromkeys(data, WEEK_MS)


async def test_a_worker_that_creates_its_request_topic_gives_it_the_short_retention(
    kafka_settings: KafkaSettings,
) -> None:
    settings = kafka_settings.model_copy(update={"request_topic_retention_ms": 120_000})
    topic = f"x0.test.retention.{uuid.uuid4().hex[:12]}"
    # Never started: ensure_topics uses an admin client of its own.
    responder = responder_under_test(new_broker(settings), settings, topic)

    await responder.ensure_topics()

    retention = await retention_of(settings, [topic, dlq_topic(topic)])
    assert retention == {topic: 120_000, dlq_topic(topic): 120_000}
