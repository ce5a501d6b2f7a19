"""Consumer-group set-up for tests and benchmarks on the real broker.

A new consumer group starts where its committed offsets say. Tests and benchmarks
give their groups positions first, so a worker in a group of its own reads only what
the test sends rather than every message earlier runs left on the shared topics.
:func:`running_requester` asks a worker under test, as the gateway does, and
:func:`responder_under_test` is the worker's side.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

from x0_common.kafka.clients import connection_options, ensure_topics, process_settings
from x0_common.kafka.requester import Requester
from x0_common.kafka.responder import Responder
from x0_common.metrics import RequesterMetrics, ResponderMetrics, new_registry
from x0_common.settings import KafkaSettings


async def topic_partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` (none when the topic does not exist yet)."""
    consumer = AIOKafkaConsumer(**connection_options(process_settings(bootstrap)))
    await consumer.start()
    try:
        # As LogFollower does: the consumer has no public call for a topic's partitions.
        cluster = await consumer._client.fetch_all_metadata()
        numbers = sorted(cluster.partitions_for_topic(topic) or ())
        return [TopicPartition(topic, number) for number in numbers]
    finally:
        await consumer.stop()


async def commit_offsets(bootstrap: str, group: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Give consumer group ``group`` these committed positions."""
    if not offsets:
        return
    consumer = AIOKafkaConsumer(
        **connection_options(process_settings(bootstrap)), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()


async def commit_at_end(bootstrap: str, groups: Mapping[str, str]) -> None:
    """Commit each new group's offsets (group id -> topic) at its topic's current end."""
    for group, topic in groups.items():
        partitions = await topic_partitions(bootstrap, topic)
        if not partitions:  # a topic not created yet has no history to skip
            continue
        consumer = AIOKafkaConsumer(**connection_options(process_settings(bootstrap)))
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        await commit_offsets(bootstrap, group, ends)


def start_groups_at_end(bootstrap: str, groups: Mapping[str, str]) -> None:
    """:func:`commit_at_end` from synchronous code, such as a session fixture.

    A new RAG writer group would otherwise re-publish an index event for every ingest
    message the broker still holds, from every earlier test run, before it reaches the
    test's own.
    """
    # A thread of its own: the session's event loop may be running already.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, commit_at_end(bootstrap, dict(groups))).result(timeout=60)


@asynccontextmanager
async def running_requester(
    kafka_settings: KafkaSettings, reply_topic: str
) -> AsyncIterator[Requester]:
    """A started requester answering on ``reply_topic``, with metrics of its own;
    stopped on exit."""
    requester = Requester(
        kafka_settings, reply_topic=reply_topic, metrics=RequesterMetrics(new_registry(), "test")
    )
    await requester.start()
    try:
        yield requester
    finally:
        await requester.stop()


def responder_under_test(
    broker: KafkaBroker,
    settings: KafkaSettings,
    topic: str,
    *,
    service: str = "test",
    group_id: str | None = None,
    metrics: ResponderMetrics | None = None,
) -> Responder:
    """A responder on ``topic`` attached to ``broker``, in a consumer group of its own
    (``group-<topic>`` unless told), with fresh metrics labelled ``service`` unless
    ``metrics`` are given."""
    return Responder(
        broker,
        topic=topic,
        group_id=group_id or f"group-{topic}",
        settings=settings,
        metrics=metrics or ResponderMetrics(new_registry(), service),
    )


async def new_topic(settings: KafkaSettings, label: str, *, partitions: int = 1) -> str:
    """A topic of this test's own, ``x0.test.<label>.<random>``, created now."""
    name = f"x0.test.{label}.{uuid.uuid4().hex[:12]}"
    await ensure_topics(settings, [name], partitions=partitions)
    return name
